"""Find and run the non-C front ends: every module ``gilaudit.static.front_<name>`` with an
``analyse(view) -> FrontEndResult`` function takes part, so adding a front end is adding a
file. A front end that raises is our bug: it becomes an internal-error diagnostic naming it,
and the others go on."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from gilaudit import static
from gilaudit.frontend import FrontEndResult, TargetView
from gilaudit.model import Diagnostic

__all__ = ["front_ends", "run_front_ends"]

Analyse = Callable[[TargetView], FrontEndResult]


def front_ends() -> list[tuple[str, Analyse, frozenset[str]]]:
    """(name, analyse, the rule ids it can report) for every front end."""
    found: list[tuple[str, Analyse, frozenset[str]]] = []
    for info in sorted(pkgutil.iter_modules(static.__path__), key=lambda i: i.name):
        if not info.name.startswith("front_"):
            continue
        module = importlib.import_module(f"gilaudit.static.{info.name}")
        analyse = getattr(module, "analyse", None)
        if callable(analyse):
            rules = frozenset(getattr(module, "RULES", frozenset()))
            found.append((info.name[len("front_"):], analyse, rules))
    return found


def run_front_ends(view: TargetView) -> FrontEndResult:
    result = FrontEndResult()
    for name, analyse, rules in front_ends():
        if rules and not rules & view.config.selected:
            continue  # none of its rules is asked for
        try:
            result = result.merged(analyse(view))
        except Exception as exc:  # noqa: BLE001 - one broken front end must not lose the run
            result = result.merged(FrontEndResult(diagnostics=(Diagnostic(
                path=None, kind="internal-error",
                message=f"the {name} front end failed: {type(exc).__name__}: {exc}; its rules "
                        "were not checked"),)))
    return result
