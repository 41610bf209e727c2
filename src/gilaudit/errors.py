"""The tool's own errors. Bad *input* never raises: it becomes a Diagnostic."""

from __future__ import annotations

__all__ = ["ConfigError", "GilauditError", "RuleCatalogueError", "UsageError"]


class GilauditError(Exception):
    """Base class; ``str()`` is the message shown to the user."""

    exit_code = 3


class UsageError(GilauditError):
    exit_code = 2


class ConfigError(GilauditError):
    exit_code = 2


class RuleCatalogueError(GilauditError):
    """The shipped rule catalogue is broken: a bug in gilaudit, not in the user's code."""

    exit_code = 3
