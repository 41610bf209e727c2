"""One translation unit to parse: what the planner decides and a parser worker receives."""

from __future__ import annotations

from dataclasses import dataclass

from gilaudit.frontends.c.facts import Diag, FileFacts

__all__ = ["ParseJob", "empty_facts"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ParseJob:
    abspath: str
    rel: str
    root: str
    language: str  # "c" | "c++"
    args: tuple[str, ...]
    # Find top-level declarations by asking libclang at the file's own identifiers instead of
    # enumerating every declaration of Python.h and the system headers (the slow part of small
    # files). Off only to cross-check the two in tests.
    located_toplevel: bool = True
    # Project files with code that this unit, and no other, analyses in its context.
    included_code: tuple[str, ...] = ()
    limited_api: bool = False  # the file or the build defines Py_LIMITED_API


def empty_facts(rel: str, diags: list[Diag], lines: int = 0) -> FileFacts:
    return FileFacts(path=rel, lines=lines, functions=(), globals=(), module_defs=(),
                     slot_arrays=(), types=(), method_tables=(), address_taken=(), inactive=(),
                     members=(), guards=(), suppressions=(), diagnostics=tuple(diags), deps=())
