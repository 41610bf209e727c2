"""The truth of the ports benchmark: the functions a free-threading port changed, read from the
port itself.

A line-level diff of each source file present in both releases gives the changes; an added
line carrying a family's marker (`families.py`) is located in the AFTER function around it and
that function is looked up by name in BEFORE. It is kept when AFTER's function has more of
that family's markers than BEFORE's (code that only moved adds nothing). Three cases need
more than the enclosing function:

- Argument Clinic's `@critical_section` sits in the comment above the function: it counts for
  the `_impl` the block generates;
- a port often moves the locked code into a new helper: the helper's families count for the
  functions that existed before and gained a call to it;
- a marker outside any function (a `PyMutex` member added to a struct, a fallback macro) is
  kept as *unlocated*, for the record: there is no function to find it in;
- a port that also moves code into new files: a function of a new file that has more of a
  family than the one function of that name in BEFORE (in whatever file) counts there;
- a method converted to Argument Clinic: AFTER's `X_impl` is BEFORE's `X` when BEFORE had no
  `X_impl` and AFTER's file no longer defines `X` (clinic generates it into its header).

Items are de-duplicated by (file, function, family) and carry their line range in BEFORE
(or, ``in_after``, in AFTER) and the first added line that made them, for audit. The data
file's per-package `exclude` and `include` entries (each with a reason) correct what the
heuristic gets wrong.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .families import NEWREF, count, families_of_line, strip_comments
from .functions import Function, enclosing, functions_of, is_cython

__all__ = ["Override", "Truth", "TruthItem", "Unlocated", "apply_overrides", "derive_truth"]

_CLINIC = re.compile(r"\[clinic input\](.*?)\[clinic start generated code\]", re.S)


@dataclass(frozen=True, slots=True, order=True)
class TruthItem:
    path: str  # relative to the scanned tree
    function: str
    family: str
    start: int  # the function's lines (1-based, inclusive)
    end: int
    evidence: str = field(default="", compare=False)  # "AFTER line N: the added code"

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "function": self.function, "family": self.family,
                "start": self.start, "end": self.end, "evidence": self.evidence}


@dataclass(frozen=True, slots=True, order=True)
class Unlocated:
    path: str
    line: int  # in AFTER
    family: str
    code: str

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "family": self.family, "code": self.code}


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """A hand correction of the derived truth: ``family`` empty means every family."""
    path: str
    function: str
    family: str = ""
    reason: str

    def matches(self, item: TruthItem) -> bool:
        return (item.path == self.path and item.function == self.function
                and self.family in ("", item.family))


@dataclass(frozen=True, slots=True, kw_only=True)
class Truth:
    items: list[TruthItem]
    unlocated: list[Unlocated]
    excluded: list[tuple[TruthItem, str]] = field(default_factory=list)  # with the reason
    unresolved: list[Override] = field(default_factory=list)  # includes with no function
    unused: list[Override] = field(default_factory=list)  # excludes that matched nothing

    def to_dict(self) -> dict[str, object]:
        return {"items": [t.to_dict() for t in self.items],
                "unlocated": [u.to_dict() for u in self.unlocated],
                "excluded": [{**t.to_dict(), "reason": r} for t, r in self.excluded],
                "unresolved_includes": [{"path": o.path, "function": o.function,
                                         "family": o.family, "reason": o.reason}
                                        for o in self.unresolved],
                "unused_excludes": [{"path": o.path, "function": o.function,
                                     "family": o.family, "reason": o.reason}
                                    for o in self.unused]}


def derive_truth(before: dict[str, str], after: dict[str, str], *,
                 in_after: bool = False) -> Truth:
    """``before`` and ``after``: source text by path relative to each release's root."""
    items: dict[tuple[str, str, str], TruthItem] = {}
    unlocated: list[Unlocated] = []
    for path in sorted(set(before) & set(after)):
        if before[path] == after[path]:
            continue
        for item in _file_truth(path, before[path], after[path], in_after, unlocated):
            items.setdefault((item.path, item.function, item.family), item)
    for item in _moved_truth(before, after, in_after):
        items.setdefault((item.path, item.function, item.family), item)
    return Truth(items=sorted(items.values()), unlocated=sorted(set(unlocated)))


def _moved_truth(before: dict[str, str], after: dict[str, str],
                 in_after: bool) -> Iterable[TruthItem]:
    new_paths = sorted(set(after) - set(before))
    if not new_paths:
        return
    found: dict[str, list[tuple[str, Function]]] = {}
    for path, text in before.items():
        for f in functions_of(path, text):
            found.setdefault(f.name, []).append((path, f))
    for path in new_paths:
        atomics = "libcpp.atomic" in after[path]
        for fn in functions_of(path, after[path]):
            gained = count(path, fn.body, cython_atomics=atomics)
            if not gained or len(found.get(fn.name, [])) != 1:
                continue  # nothing added, or no single function of that name before
            old_path, old_fn = found[fn.name][0]
            gained -= count(old_path, old_fn.body, cython_atomics=atomics)
            for fam in sorted(_resolve_newref(set(gained))):
                at_path, at = (path, fn) if in_after else (old_path, old_fn)
                yield TruthItem(at_path, fn.name, fam, at.start, at.end,
                                f"moved from {old_path} to {path}:{fn.start} and gained it")


def _file_truth(path: str, text_before: str, text_after: str, in_after: bool,
                unlocated: list[Unlocated]) -> Iterable[TruthItem]:
    cython = is_cython(path)
    atomics = cython and "libcpp.atomic" in text_after
    code_before = strip_comments(path, text_before).split("\n")
    code_after = strip_comments(path, text_after).split("\n")
    old_fns = functions_of(path, text_before)
    new_fns = functions_of(path, text_after)
    old, new = _by_name(old_fns), _by_name(new_fns)
    key_of = {f: k for k, f in new.items()}
    # (function in AFTER, family) -> the first added line that shows it
    touched: dict[tuple[str, str], str] = {}
    matcher = difflib.SequenceMatcher(None, code_before, code_after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag not in ("replace", "insert"):
            continue
        removed = "\n".join(code_before[i1:i2])
        for j in range(j1, j2):
            fn = enclosing(new_fns, j + 1)
            was = old.get(key_of[fn]) if fn is not None else None
            fams = families_of_line(code_after[j], cython=cython, cython_atomics=atomics,
                                    removed=removed, before=was.body if was else "")
            if not fams:
                continue
            for fam in sorted(fams):
                if fn is not None:
                    touched.setdefault((key_of[fn], fam), f"AFTER line {j + 1}: "
                                       f"{code_after[j].strip()}")
                else:
                    unlocated.append(Unlocated(path, j + 1, fam, code_after[j].strip()))
    had = _clinic_critical(text_before, _by_name(old_fns))
    for name, line in _clinic_critical(text_after, new).items():
        if name not in had:
            touched.setdefault((name, "critical-section"),
                               f"AFTER line {line}: @critical_section (Argument Clinic)")
    yield from _credit(path, touched, old, new, atomics, in_after)


def _credit(path: str, touched: dict[tuple[str, str], str], old: dict[str, Function],
            new: dict[str, Function], atomics: bool, in_after: bool) -> Iterable[TruthItem]:
    old = {**{f"{n}_impl": f for n, f in old.items() if n not in new
              and f"{n}_impl" in new and f"{n}_impl" not in old}, **old}
    helpers = _helper_families(touched, old, new)
    for (name, fam), evidence in sorted(touched.items()):
        before_fn, after_fn = old.get(name), new.get(name)
        if before_fn is None or after_fn is None:
            continue  # a new helper: credited to its callers below
        if fam == NEWREF and not any((name, f) in touched for f in ("critical-section", "lock")):
            continue  # a strong reference with no lock beside it: a respelled Py_INCREF
        if not evidence.endswith("(Argument Clinic)") and count(
                path, after_fn.body, cython_atomics=atomics)[fam] <= count(
                path, before_fn.body, cython_atomics=atomics)[fam]:
            continue  # moved or rewritten code, no more of this family than before
        at = after_fn if in_after else before_fn
        yield TruthItem(path, at.name, "borrowed-reference" if fam == NEWREF else fam,
                        at.start, at.end, evidence)
    for name, after_fn in new.items():
        before_fn = old.get(name)
        if before_fn is None:
            continue
        for helper, fams in helpers.items():
            call = re.compile(rf"\b{re.escape(helper.split('#')[0])}\s*\(")
            if call.search(after_fn.body) and not call.search(before_fn.body):
                at = after_fn if in_after else before_fn
                for fam in sorted(fams):
                    yield TruthItem(path, at.name, fam, at.start, at.end,
                                    f"calls {helper.split('#')[0]}(), which the port added "
                                    "with this family")


def _helper_families(touched: dict[tuple[str, str], str], old: dict[str, Function],
                     new: dict[str, Function]) -> dict[str, set[str]]:
    """Functions the port added, with the families they carry, also through other new
    helpers they call (to a fixed point)."""
    out: dict[str, set[str]] = {}
    for (name, fam) in touched:
        if name not in old and name in new:
            out.setdefault(name, set()).add(fam)
    for fams in out.values():
        _resolve_newref(fams)
    changed = True
    while changed:
        changed = False
        for name, fn in new.items():
            if name in old:
                continue
            for helper, fams in list(out.items()):
                if helper != name and re.search(rf"\b{re.escape(helper.split('#')[0])}\s*\(",
                                                fn.body) \
                        and not fams <= out.get(name, set()):
                    out.setdefault(name, set()).update(fams)
                    changed = True
    return out


def _resolve_newref(fams: set[str]) -> set[str]:
    """A strong reference to a field is the port's beside a lock, else a respelled INCREF."""
    if NEWREF in fams:
        fams.discard(NEWREF)
        if fams & {"critical-section", "lock"}:
            fams.add("borrowed-reference")
    return fams


def _by_name(functions: list[Function]) -> dict[str, Function]:
    """Functions by name; `#if` variants of one function (a Windows and a POSIX one) are
    `name`, `name#2`, ... in order, so that each is paired with its namesake."""
    out: dict[str, Function] = {}
    for f in functions:
        key, k = f.name, 1
        while key in out:
            k += 1
            key = f"{f.name}#{k}"
        out[key] = f
    return out


def _clinic_critical(text: str, functions: dict[str, Function]) -> dict[str, int]:
    """The keys of the `_impl` functions whose Argument Clinic input (the block just above
    the function) says `@critical_section`, with the line of that declaration."""
    starts = sorted((f.start, k) for k, f in functions.items())
    out: dict[str, int] = {}
    for m in _CLINIC.finditer(text):
        at = m.group(1).find("@critical_section")
        line = text.count("\n", 0, m.end()) + 1
        following = next((k for start, k in starts if start > line), None)
        if at >= 0 and following is not None:
            out[following] = text.count("\n", 0, m.start(1) + at) + 1
    return out


def apply_overrides(truth: Truth, before: dict[str, str], *, exclude: list[Override],
                    include: list[Override]) -> Truth:
    """The data file's corrections: excluded items are kept aside with their reason;
    included ones are located by name in BEFORE (or listed as unresolved)."""
    kept, excluded = [], list(truth.excluded)
    for item in truth.items:
        why = next((o.reason for o in exclude if o.matches(item)), None)
        if why is None:
            kept.append(item)
        else:
            excluded.append((item, why))
    unresolved = list(truth.unresolved)
    for o in include:
        fn = _by_name(functions_of(o.path, before.get(o.path, ""))).get(o.function)  # the first
        if fn is None or not o.family:
            unresolved.append(o)
            continue
        kept.append(TruthItem(o.path, o.function, o.family, fn.start, fn.end,
                              f"included by hand: {o.reason}"))
    unused = [o for o in exclude if not any(o.matches(t) for t, _why in excluded)]
    return Truth(items=sorted(set(kept)), unlocated=truth.unlocated, excluded=excluded,
                 unresolved=unresolved, unused=unused)
