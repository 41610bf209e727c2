"""Module and type declarations read from initializer text: PyModuleDef, slot arrays,
PyMethodDef/PyGetSetDef tables, static and heap type definitions.

These are data tables; reading them from the preprocessed-aware text (inactive branches already
blanked) is both simpler and faster than walking initializer lists in the AST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gilaudit.frontends import textscan
from gilaudit.frontends.c.facts import ModuleDefFact, SlotEntry, TypeFact

__all__ = ["ModuleText", "module_facts"]

_MODDEF = re.compile(r"PyModuleDef\s+([A-Za-z_]\w*)\s*=\s*\{")
_SLOTS = re.compile(r"PyModuleDef_Slot\s+([A-Za-z_]\w*)\s*\[[^\]]*\]\s*=\s*\{")
_SLOT_ENTRY = re.compile(r"\{\s*(Py_mod_\w+)\s*,\s*([^{}]*?)\s*\}")
_TABLE = re.compile(r"(PyMethodDef|PyGetSetDef)\s+([A-Za-z_]\w*)\s*\[[^\]]*\]\s*=\s*\{")
_METHOD_ENTRY = re.compile(
    # casts, and cast macros (CPython's `_PyCFunction_CAST(deque_index)`), before the name
    r"\{\s*\"([^\"]+)\"\s*,\s*(?:\(\s*[\w\s\*\(\)]*?\)\s*)*\(?\s*&?\s*"
    r"(?:[A-Za-z_]\w*_CAST\s*\(\s*)?([A-Za-z_]\w*)\s*\)?"
    r"(?:\s*,\s*(?:\(\s*\w+\s*\)\s*)?([A-Za-z_]\w*))?"
)
_TYPEOBJ = re.compile(r"PyTypeObject\s+([A-Za-z_]\w*)\s*=\s*\{")
_TYPESLOTS = re.compile(r"PyType_Slot\s+([A-Za-z_]\w*)\s*\[[^\]]*\]\s*=\s*\{")
_TYPESPEC = re.compile(r"PyType_Spec\s+([A-Za-z_]\w*)\s*=\s*\{")
_STRING = re.compile(r"\"((?:\\.|[^\"\\])*)\"")
_ROLE_SLOT = re.compile(
    r"(?:Py_|\.)(tp_(?:new|init|dealloc|traverse|clear|finalize|del|free|alloc))\s*[,=]\s*"
    r"(?:\(\s*\w+\s*\)\s*)?([A-Za-z_]\w*)"
)
_SLOTS_REF = re.compile(r"\.slots\s*=\s*([A-Za-z_]\w*)")
_SUBTABLE = re.compile(r"(PyNumberMethods|PySequenceMethods|PyMappingMethods|PyBufferProcs|"
                       r"PyAsyncMethods)\s+([A-Za-z_]\w*)\s*=\s*\{")
_MEMBERS = re.compile(r"(PyMemberDef)\s+([A-Za-z_]\w*)\s*\[[^\]]*\]\s*=\s*\{")
_MEMBER_ENTRY = re.compile(
    r"\{\s*\"([^\"]+)\"\s*,\s*([A-Za-z_]\w*)\s*,\s*offsetof\s*\(\s*(?:struct\s+)?[A-Za-z_]\w*\s*,"
    r"\s*([A-Za-z_]\w*)[^)]*\)\s*,\s*([^,}]*)")
_SIZEOF = re.compile(r"\bsizeof\s*\(\s*(?:struct\s+)?([A-Za-z_]\w*)\s*\)")
_DESIGNATED = re.compile(r"^\.(\w+)\s*=\s*(.*)$", re.DOTALL)
_SLOT_PAIR = re.compile(r"\{\s*Py_(\w+)\s*,\s*([^{}]*?)\s*\}")
_METHODDEF = re.compile(r"\b[A-Za-z_]\w*_METHODDEF\b")
# PyTypeObject's fields in declaration order after the object header and tp_name, for
# positional initializers.
_TYPE_FIELDS = (
    "tp_basicsize", "tp_itemsize", "tp_dealloc", "tp_vectorcall_offset", "tp_getattr",
    "tp_setattr", "tp_as_async", "tp_repr", "tp_as_number", "tp_as_sequence", "tp_as_mapping",
    "tp_hash", "tp_call", "tp_str", "tp_getattro", "tp_setattro", "tp_as_buffer", "tp_flags",
    "tp_doc", "tp_traverse", "tp_clear", "tp_richcompare", "tp_weaklistoffset", "tp_iter",
    "tp_iternext", "tp_methods", "tp_members", "tp_getset", "tp_base", "tp_dict",
    "tp_descr_get", "tp_descr_set", "tp_dictoffset", "tp_init", "tp_alloc", "tp_new", "tp_free",
    "tp_is_gc", "tp_bases", "tp_mro", "tp_cache", "tp_subclasses", "tp_weaklist", "tp_del",
    "tp_version_tag", "tp_finalize", "tp_vectorcall",
)
_NOT_FUNCTIONS = frozenset({"NULL", "sizeof", "offsetof", "struct", "const", "PyObject",
                            "Py_TPFLAGS_DEFAULT", "PyDoc_STR", "PyVarObject_HEAD_INIT",
                            "PyObject_HEAD_INIT", "nullptr"})


@dataclass(frozen=True, slots=True)
class ModuleText:
    module_defs: tuple[ModuleDefFact, ...]
    slot_arrays: tuple[tuple[str, tuple[SlotEntry, ...]], ...]
    types: tuple[TypeFact, ...]
    method_tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    member_tables: tuple[tuple[str, tuple[tuple[str, str, bool, bool], ...]], ...] = ()


_BRACES = re.compile(r"[{}]")


def _declarations(pattern: re.Pattern[str], keyword: str, bare: str) -> list[re.Match[str]]:
    """Matches of ``pattern`` at each occurrence of ``keyword``: str.find is far faster than
    letting the regex engine scan a large file for a pattern that starts with a class."""
    out = []
    pos = bare.find(keyword)
    while pos != -1:
        if pos == 0 or not (bare[pos - 1].isalnum() or bare[pos - 1] == "_"):
            m = pattern.match(bare, pos)
            if m:
                out.append(m)
        pos = bare.find(keyword, pos + len(keyword))
    return out


def _braced(bare: str, open_pos: int) -> int:
    depth = 0
    for m in _BRACES.finditer(bare, open_pos):
        if m.group() == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.start()
    return len(bare) - 1


def _top_level_items(code: str, bare: str, start: int, end: int) -> list[str]:
    items = [" ".join(code[a:b].split()) for a, b in textscan.top_level_spans(bare, start, end)]
    return items if items[-1] else items[:-1]


def _first_string(text: str) -> str:
    m = _STRING.search(text)
    return m.group(1) if m else ""


# `.tp_name = MODULE_NAME ".RowBuilder",` (a spec's `.name`): the strings of that item, up to
# the comma that ends it
_DESIGNATED_NAME = re.compile(r"\.\s*(?:tp_name|name)\s*=\s*((?:\s*(?:\w+|\"(?:\\.|[^\"\\])*\"))+)")
_DESIGNATED_DOC = re.compile(r"\.\s*(?:tp_doc|doc)\s*=\s*((?:\s*(?:\w+|\\|\"(?:\\.|[^\"\\])*\"))+)")


def _type_name(body: str) -> str:
    """A type object's or spec's name: its designated `tp_name`/`name` when it has one (igwn-
    ligolw puts `.tp_doc` first, review 20), else its first string (positional)."""
    m = _DESIGNATED_NAME.search(body)
    if m is not None:
        parts = _STRING.findall(m.group(1))
        if parts:
            return "".join(parts)
    return _first_string(body)


def _type_doc(body: str) -> str:
    """The docstring's text, its escapes as spaces (`tokens.\\nNot thread-safe` is two
    words)."""
    m = _DESIGNATED_DOC.search(body)
    doc = "".join(_STRING.findall(m.group(1))) if m is not None else " ".join(
        _STRING.findall(body)[1:])
    return re.sub(r"\\.", " ", doc)


def module_facts(code: str, bare: str, index: textscan.LineIndex) -> ModuleText:
    module_defs: list[ModuleDefFact] = []
    for m in _declarations(_MODDEF, "PyModuleDef", bare):
        open_pos = m.end() - 1
        close = _braced(bare, open_pos)
        items = _top_level_items(code, bare, open_pos + 1, close)
        fields: dict[str, str] = {}
        positional = ["m_base", "m_name", "m_doc", "m_size", "m_methods", "m_slots"]
        pos = 0
        for item in items:
            dm = re.match(r"^\.(\w+)\s*=\s*(.*)$", item, re.DOTALL)
            if dm:
                fields[dm.group(1)] = dm.group(2)
            elif pos < len(positional):
                fields[positional[pos]] = item
                pos += 1
        name = _first_string(fields.get("m_name", ""))
        slots = fields.get("m_slots", "").strip()
        slots = "" if slots in ("", "NULL", "0", "nullptr") else slots.lstrip("&").strip()
        methods = fields.get("m_methods", "").strip()
        line, col = index.line_col(m.start())
        module_defs.append(ModuleDefFact(m.group(1), name, line, col, slots, methods))
    slot_arrays: list[tuple[str, tuple[SlotEntry, ...]]] = []
    for m in _declarations(_SLOTS, "PyModuleDef_Slot", bare):
        open_pos = m.end() - 1
        close = _braced(bare, open_pos)
        entries = []
        for e in _SLOT_ENTRY.finditer(code, open_pos + 1, close):
            line, col = index.line_col(e.start())
            value = " ".join(e.group(2).split())
            entries.append(SlotEntry(e.group(1), value, line, col, ()))
        slot_arrays.append((m.group(1), tuple(entries)))
    tables: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for m in (*_declarations(_TABLE, "PyMethodDef", bare),
              *_declarations(_TABLE, "PyGetSetDef", bare)):
        open_pos = m.end() - 1
        close = _braced(bare, open_pos)
        pairs: list[tuple[str, str]] = []
        for e in _METHOD_ENTRY.finditer(code, open_pos + 1, close):
            pairs.append((e.group(1), e.group(2)))
            if m.group(1) == "PyGetSetDef" and e.group(3) and e.group(3) not in ("NULL", "0"):
                pairs.append((e.group(1), e.group(3)))
        # Argument Clinic's `FOO_METHODDEF` entries: resolved through the macros later.
        for found in _METHODDEF.finditer(bare, open_pos + 1, close):
            pairs.append(("@macro", found.group()))
        tables.append((m.group(2), tuple(pairs)))
    members: list[tuple[str, tuple[tuple[str, str, bool, bool], ...]]] = []
    for m in _declarations(_MEMBERS, "PyMemberDef", bare):
        close = _braced(bare, m.end() - 1)
        rows = tuple(
            (e.group(1), e.group(3), "READONLY" not in e.group(4) and "Py_READONLY"
             not in e.group(4), "OBJECT" in e.group(2))
            for e in _MEMBER_ENTRY.finditer(code, m.end(), close))
        members.append((m.group(2), rows))
    subtables: dict[str, tuple[tuple[str, str], ...]] = {}
    for kw in ("PyNumberMethods", "PySequenceMethods", "PyMappingMethods", "PyBufferProcs",
               "PyAsyncMethods"):
        for m in _declarations(_SUBTABLE, kw, bare):
            close = _braced(bare, m.end() - 1)
            subtables[m.group(2)] = _entries(code, bare, m.end(), close, ())
    types: list[TypeFact] = []
    table_names = [t for t, _ in tables] + [t for t, _ in members]
    slot_bodies: dict[str, str] = {}
    for m in _declarations(_TYPESLOTS, "PyType_Slot", bare):
        close = _braced(bare, m.end() - 1)
        slot_bodies[m.group(1)] = code[m.end():close]
    for m in _declarations(_TYPEOBJ, "PyTypeObject", bare):
        close = _braced(bare, m.end() - 1)
        body = code[m.end():close]
        type_entries = _entries(code, bare, m.end(), close, _TYPE_FIELDS)
        types.append(_type_fact(_type_name(body), body, table_names, type_entries, subtables,
                                index.line_col(m.start())[0]))
    for m in _declarations(_TYPESPEC, "PyType_Spec", bare):
        close = _braced(bare, m.end() - 1)
        body = code[m.end():close]
        ref = _SLOTS_REF.search(body)
        items = _top_level_items(code, bare, m.end(), close)
        slots_name = ref.group(1) if ref else (items[-1] if len(items) >= 5 else "")
        slot_body = slot_bodies.get(slots_name, "")
        type_entries = tuple((p.group(1), _function_name(p.group(2)))
                        for p in _SLOT_PAIR.finditer(slot_body))
        types.append(_type_fact(_type_name(body), body + slot_body, table_names,
                                tuple(e for e in type_entries if e[1]), subtables,
                                index.line_col(m.start())[0]))
    return ModuleText(tuple(module_defs), tuple(slot_arrays), tuple(types), tuple(tables),
                      tuple(members))


def _type_fact(tp_name: str, body: str, table_names: list[str],
               entries: tuple[tuple[str, str], ...],
               subtables: dict[str, tuple[tuple[str, str], ...]], line: int) -> TypeFact:
    short = tp_name.rsplit(".", 1)[-1]
    roles = tuple((r.group(1), r.group(2)) for r in _ROLE_SLOT.finditer(body))
    # Positional initializers name their tables without a field name: any table mentioned counts.
    refs = tuple(t for t in table_names if re.search(rf"\b{re.escape(t)}\b", body))
    every = list(entries)
    for name, sub in subtables.items():
        if re.search(rf"\b{re.escape(name)}\b", body):
            every += sub
    size = _SIZEOF.search(body)
    doc = _type_doc(body)[:400]
    return TypeFact(short, refs, roles, tuple(dict.fromkeys(every)),
                    size.group(1) if size else "", line, doc)


def _function_name(value: str) -> str:
    """The function a slot value names, casts and `&` removed; "" for anything else."""
    v = re.sub(r"\(\s*[\w\s\*]+\)", "", value).strip().lstrip("&").strip()
    return v if re.fullmatch(r"[A-Za-z_]\w*", v) and v not in _NOT_FUNCTIONS else ""


def _entries(code: str, bare: str, start: int, close: int,
             order: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(slot, function) for each initializer item that names a function: designated items by
    their field, positional ones by ``order`` (after the header and name), else "slot"."""
    out: list[tuple[str, str]] = []
    items = _top_level_items(code, bare, start, close)
    pos = 0
    for item in items:
        d = _DESIGNATED.match(item)
        if d:
            slot, value = d.group(1), d.group(2)
        else:
            if order and pos == 0 and ("HEAD_INIT" in item or item.startswith("{")):
                # The header (and, when it carries the trailing comma, tp_name) comes first.
                pos = 1 if "\"" in item else 0
                continue
            if order and pos == 0 and item.startswith("\""):
                pos = 1
                continue
            slot = order[pos - 1] if order and 0 < pos <= len(order) else "slot"
            value = item
            pos += 1
        name = _function_name(value)
        if name:
            out.append((slot, name))
    return tuple(out)
