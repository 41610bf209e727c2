"""The front ends: one package each below this one (``c``, ``cython``, ``bindings``,
``buildconfig``, ``wheels``, ``binary``), every one exposing the contract of ``contract.py``:
``analyse(view) -> FrontEndResult`` and ``RULES``, the rule ids it can report. Adding a front
end is adding a package. The modules beside them (``textscan``, ``buildfiles``, ``wheelnames``,
``libc``) are shared readers that any front end may use; no front end imports another.

A front end that raises is our bug: it becomes an internal-error diagnostic naming it, and the
others go on.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Collection
from dataclasses import replace

from gilaudit.frontends.contract import FrontEndResult, TargetView
from gilaudit.model import Diagnostic

__all__ = ["front_ends", "run_front_ends"]

Analyse = Callable[[TargetView], FrontEndResult]


def front_ends() -> list[tuple[str, Analyse, frozenset[str]]]:
    """(name, analyse, the rule ids it can report) for every front end."""
    found: list[tuple[str, Analyse, frozenset[str]]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        analyse = getattr(module, "analyse", None)
        if callable(analyse):
            rules = frozenset(getattr(module, "RULES", frozenset()))
            found.append((info.name, analyse, rules))
    return found


def run_front_ends(view: TargetView, *, skip: Collection[str] = ()) -> FrontEndResult:
    """Every front end but those named in ``skip``, merged."""
    result = FrontEndResult()
    for name, analyse, rules in front_ends():
        if name in skip or (rules and not rules & view.config.selected):
            continue  # none of its rules is asked for
        try:
            result = result.merged(analyse(view))
        except Exception as exc:  # noqa: BLE001 - one broken front end must not lose the run
            result = result.merged(FrontEndResult(diagnostics=(Diagnostic(
                path=None, kind="internal-error",
                message=f"the {name} front end failed: {type(exc).__name__}: {exc}; its rules "
                        "were not checked"),)))
    # Two front ends may read the same archive and meet the same problem in it.
    return replace(result, diagnostics=tuple(dict.fromkeys(result.diagnostics)))
