"""The package's layering, read from its import statements (those inside functions too): no
front end imports another, the dynamic phase imports no front end, and the model, errors and
configuration import nothing of the front ends, the report writers or the dynamic phase."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gilaudit
from gilaudit.frontends import front_ends

PACKAGE = Path(gilaudit.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every gilaudit module ``path`` imports, by dotted name (``from a import b`` counts as
    both ``a`` and ``a.b``, since ``b`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in out if m == "gilaudit" or m.startswith("gilaudit.")}


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))
           if "childside" not in p.parts}
FRONT_ENDS = sorted(f"gilaudit.frontends.{name}" for name, _a, _r in front_ends())


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _offending(importers: str, forbidden: list[str]) -> list[str]:
    return sorted(f"{mod} imports {imp}" for mod, imps in MODULES.items()
                  if _within(mod, importers) for imp in imps
                  if any(_within(imp, f) for f in forbidden))


def test_the_walk_sees_the_package() -> None:
    assert "gilaudit.frontends.c.parse" in MODULES
    assert "gilaudit.frontends.c.facts" in MODULES["gilaudit.frontends.c.parse"]
    names = ("binary", "bindings", "buildconfig", "c", "cython", "wheels")
    assert [f"gilaudit.frontends.{n}" for n in names] == FRONT_ENDS


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_no_front_end_imports_another(front_end: str) -> None:
    assert _offending(front_end, [f for f in FRONT_ENDS if f != front_end]) == []


def test_shared_front_end_modules_import_no_front_end() -> None:
    shared = [m for m in MODULES if _within(m, "gilaudit.frontends")
              and not any(_within(m, f) for f in FRONT_ENDS) and m != "gilaudit.frontends"]
    assert "gilaudit.frontends.contract" in shared and "gilaudit.frontends.buildfiles" in shared
    bad = [f"{m} imports {i}" for m in shared for i in MODULES[m]
           if any(_within(i, f) for f in FRONT_ENDS)]
    assert bad == []


def test_dynamic_phase_imports_no_front_end() -> None:
    assert _offending("gilaudit.dynamic", ["gilaudit.frontends", "gilaudit.findings",
                                           "gilaudit.scan"]) == []


@pytest.mark.parametrize("module", ["gilaudit.model", "gilaudit.errors", "gilaudit.config"])
def test_core_modules_stay_below_everything(module: str) -> None:
    assert module in MODULES
    assert _offending(module, ["gilaudit.frontends", "gilaudit.report", "gilaudit.dynamic",
                               "gilaudit.dashboard", "gilaudit.scan", "gilaudit.findings"]) == []


def test_archives_serve_everyone_and_need_no_front_end() -> None:
    assert _offending("gilaudit.archives", ["gilaudit.frontends", "gilaudit.dynamic",
                                            "gilaudit.report", "gilaudit.dashboard"]) == []
