"""Whether a requirement's environment marker holds on a free-threaded CPython."""

from __future__ import annotations

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import Requirement

__all__ = ["FT_PYTHONS", "applies_on_free_threaded"]

FT_PYTHONS = ("3.13", "3.14")


def applies_on_free_threaded(req: Requirement) -> bool:
    """True when the marker holds for CPython 3.13 or 3.14 (or cannot be decided)."""
    if req.marker is None:
        return True
    for py in FT_PYTHONS:
        env = {"python_version": py, "python_full_version": f"{py}.0",
               "implementation_name": "cpython", "platform_python_implementation": "CPython",
               "extra": ""}
        try:
            if req.marker.evaluate(env):
                return True
        except (UndefinedComparison, UndefinedEnvironmentName, ValueError):
            return True
    return False
