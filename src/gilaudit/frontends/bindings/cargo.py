"""Which PyO3 versions a crate can build with, from ``Cargo.toml`` and ``Cargo.lock``.

Cargo's requirement syntax is not PEP 440: a bare ``"0.22"`` is a caret requirement meaning
``>=0.22.0, <0.23.0`` (for 0.x the minor number is the compatibility boundary), ``~0.22`` keeps
the minor fixed, ``=0.22`` matches the whole 0.22 series, and ``<=0.22`` includes 0.22.9. So the
requirement is turned into a half-open interval of (major, minor, patch) triples here rather
than handed to ``packaging.specifiers``; ``Cargo.lock``, when present, gives the exact version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["INFINITY", "Interval", "PyO3Dependency", "cargo_interval", "find_pyo3", "lock_versions"]

Version3 = tuple[int, int, int]
INFINITY: Version3 = (1 << 30, 0, 0)
_COMPARATOR = re.compile(r"^\s*(\^|~|=|>=|<=|>|<)?\s*v?(\d+|\*)(?:\.(\d+|\*|x|X))?"
                         r"(?:\.(\d+|\*|x|X))?(?:[-+][0-9A-Za-z.+-]*)?\s*$")


@dataclass(frozen=True, slots=True)
class Interval:
    low: Version3  # inclusive
    high: Version3  # exclusive

    def intersect(self, other: Interval) -> Interval:
        return Interval(max(self.low, other.low), min(self.high, other.high))

    @property
    def empty(self) -> bool:
        return self.low >= self.high


def _bump(parts: list[int], at: int) -> Version3:
    """The first version after the series fixed by ``parts[:at + 1]``."""
    out = [*parts[: at + 1], 0, 0, 0][:3]
    out[at] += 1
    for i in range(at + 1, 3):
        out[i] = 0
    return (out[0], out[1], out[2])


def _comparator(op: str, nums: list[int]) -> Interval | None:
    given = len(nums)
    full = [*nums, 0, 0][:3]
    low: Version3 = (full[0], full[1], full[2])
    if op in ("", "^"):
        # The leftmost non-zero part is the compatibility boundary (a partial 0.x: the minor).
        at = next((i for i, n in enumerate(nums) if n != 0), given - 1)
        return Interval(low, _bump(nums, min(at, given - 1)))
    if op == "~":
        return Interval(low, _bump(nums, 0 if given == 1 else 1))
    if op == "=":
        return Interval(low, _bump(nums, given - 1))
    if op == ">=":
        return Interval(low, INFINITY)
    if op == ">":
        return Interval(_bump(nums, given - 1), INFINITY)
    if op == "<":
        return Interval((0, 0, 0), low)
    if op == "<=":
        return Interval((0, 0, 0), _bump(nums, given - 1))
    return None


def cargo_interval(requirement: str) -> Interval | None:
    """The versions a Cargo requirement (``"0.22"``, ``">=0.21, <0.24"``, ``"~0.23.1"``) admits;
    None when it cannot be read."""
    result = Interval((0, 0, 0), INFINITY)
    text = requirement.strip()
    if not text:
        return None
    for part in text.split(","):
        m = _COMPARATOR.match(part)
        if m is None:
            return None
        op = m.group(1) or ""
        raw = [g for g in m.group(2, 3, 4) if g is not None]
        nums: list[int] = []
        for g in raw:
            if g in ("*", "x", "X"):
                break  # a wildcard ends the fixed part: `0.22.*` is the 0.22 series
            nums.append(int(g))
        if not nums:
            continue  # `*`: any version
        iv = _comparator("=" if op == "" and len(nums) < len(raw) else op, nums)
        if iv is None:
            return None
        result = result.intersect(iv)
    return result


@dataclass(frozen=True, kw_only=True, slots=True)
class PyO3Dependency:
    requirement: str | None  # None: git/path dependency or unreadable
    key: str  # "pyo3" or the renamed key
    workspace: bool  # `{ workspace = true }`: the requirement lives in the workspace root
    features: tuple[str, ...] = ()


def _dep_from_value(key: str, value: Any) -> PyO3Dependency | None:
    if isinstance(value, str):
        return PyO3Dependency(requirement=value, key=key, workspace=False)
    if isinstance(value, dict):
        feats = value.get("features", [])
        features = tuple(f for f in feats if isinstance(f, str)) if isinstance(feats,
                                                                               list) else ()
        if value.get("workspace") is True:
            return PyO3Dependency(requirement=None, key=key, workspace=True, features=features)
        req = value.get("version")
        return PyO3Dependency(requirement=req if isinstance(req, str) else None, key=key,
                              workspace=False, features=features)
    return None


def _tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    tables: list[dict[str, Any]] = []
    deps = data.get("dependencies")
    if isinstance(deps, dict):
        tables.append(deps)
    targets = data.get("target")
    if isinstance(targets, dict):
        for spec in targets.values():
            if isinstance(spec, dict) and isinstance(spec.get("dependencies"), dict):
                tables.append(spec["dependencies"])
    return tables


def find_pyo3(data: dict[str, Any], *, workspace: bool = False) -> PyO3Dependency | None:
    """The pyo3 dependency of a parsed Cargo.toml (``workspace``: in [workspace.dependencies])."""
    if workspace:
        ws = data.get("workspace")
        tables = [ws["dependencies"]] if isinstance(ws, dict) and isinstance(
            ws.get("dependencies"), dict) else []
    else:
        tables = _tables(data)
    for table in tables:
        for key, value in table.items():
            package = value.get("package") if isinstance(value, dict) else None
            if key == "pyo3" or package == "pyo3":
                found = _dep_from_value(key, value)
                if found is not None:
                    return found
    return None


def lock_versions(data: dict[str, Any]) -> list[Version3]:
    """Every pyo3 version a parsed Cargo.lock resolves."""
    out: list[Version3] = []
    packages = data.get("package")
    if not isinstance(packages, list):
        return out
    for pkg in packages:
        if isinstance(pkg, dict) and pkg.get("name") == "pyo3" and isinstance(
                pkg.get("version"), str):
            m = re.match(r"(\d+)\.(\d+)\.(\d+)", pkg["version"])
            if m:
                out.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    return sorted(set(out))
