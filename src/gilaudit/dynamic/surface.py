"""What of an extension module can be driven: its functions, classes, methods, properties
and special methods, listed by the child after importing it; what must not be called is
listed too, with the reason, so a clean result never hides what was left out."""

from __future__ import annotations

from dataclasses import dataclass

from gilaudit.dynamic.confined import run_child
from gilaudit.dynamic.imports import ImportOutcome, outcome_of

__all__ = ["Surface", "SurfaceItem", "discover_surface"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SurfaceItem:
    name: str  # "add", "Counter", "Counter.increment"
    kind: str  # function | class | method | property | special
    signature: str | None  # __text_signature__, when the extension provides one
    skip: str | None  # why it is never called, or None

    @property
    def drivable(self) -> bool:
        return self.skip is None


@dataclass(frozen=True, kw_only=True, slots=True)
class Surface:
    module: str
    items: tuple[SurfaceItem, ...]
    imported: ImportOutcome

    @property
    def skipped(self) -> tuple[SurfaceItem, ...]:
        return tuple(i for i in self.items if not i.drivable)


def discover_surface(python: str, module: str, *, import_paths: list[str],
                     timeout: float = 30.0, python_callables: bool = False) -> Surface:
    """``python_callables``: list the package's pure-Python functions and classes as drivable
    too (by default they are listed as skipped)."""
    run = run_child(python, "surface", module, import_paths=import_paths, timeout=timeout,
                    plan={"python_callables": python_callables})
    imported = outcome_of(run, module, timeout)
    record = next((r for r in run.records if r.get("kind") == "surface"), None)
    items: list[SurfaceItem] = []
    for raw in record.get("items", []) if record else []:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            continue
        sig, skip = raw.get("signature"), raw.get("skip")
        items.append(SurfaceItem(name=raw["name"], kind=str(raw.get("kind", "")),
                                 signature=sig if isinstance(sig, str) else None,
                                 skip=skip if isinstance(skip, str) else None))
    return Surface(module=module, items=tuple(items), imported=imported)
