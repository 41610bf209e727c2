"""The binary front end (category `binary`, catalogue section 10): extension modules shipped
without sources, read from their dynamic symbol tables.

It looks at shared objects inside every wheel among the target's files and at `.so` / `.pyd` /
`.dylib` files in the tree. ELF files are parsed with pyelftools from bytes in memory; nothing
is ever loaded or run. Mach-O and PE files are recognised by their magic bytes and reported as
not analysed (a diagnostic, never a silent skip). Archive-level problems of a wheel are the
wheels front end's to report; this one reports the members it reads itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gilaudit.archives import ArchiveLimits, open_zip
from gilaudit.frontends.binary import rules as rules
from gilaudit.frontends.binary.elf import binary_format, read_dynamic_symbols
from gilaudit.frontends.binary.rules import BinaryModule
from gilaudit.frontends.contract import FrontEndResult, Hit, TargetView
from gilaudit.frontends.wheelnames import (
    WheelName,
    extension_file,
    in_test_folder,
    module_name,
    parse_wheel_name,
)
from gilaudit.model import Diagnostic, SourceFile

RULES = rules.RULES  # what this front end can report (the catalogue meta-test checks it)

__all__ = ["analyse"]

_LIMITS = ArchiveLimits()
_SUFFIXES = (".so", ".pyd", ".dylib")
_FORMAT_NAMES = {"mach-o": "Mach-O", "pe": "PE (Windows)"}


class _Outcome:
    """What analysing the binaries of one target produced (collected, then frozen)."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.diagnostics: list[Diagnostic] = []
        self.files: dict[str, str] = {}
        self.modules: dict[str, str] = {}


def _is_binary_name(name: str) -> bool:
    return name.lower().endswith(_SUFFIXES)


def _module_hits(module: BinaryModule, selected: frozenset[str]) -> Iterator[Hit]:
    if "FT153" in selected:
        naming = list(rules.match_naming(module))
        yield from naming
        if not naming:
            yield from rules.match_refcount_build(module)
    if "FT150" in selected:
        yield from rules.match_borrowed_imports(module)
    if "FT151" in selected:
        yield from rules.match_positive_evidence(module)
    if "FT152" in selected:
        yield from rules.match_non_reentrant(module)


def _analyse_bytes(path: str, display: str, data: bytes, wheel: WheelName | None,
                   selected: frozenset[str], out: _Outcome) -> None:
    base = path.rsplit("/", 1)[-1]
    ext = extension_file(base)
    kind = binary_format(data[:8])
    if kind in _FORMAT_NAMES:
        fmt = _FORMAT_NAMES[kind]
        out.diagnostics.append(Diagnostic(
            path=path, kind="not-analysed",
            message=f"{fmt} binary: only ELF symbol tables are read; its imports were not "
                    "checked"))
        out.files[path] = f"skipped: {fmt} binary not analysed"
        # The file name alone still tells which interpreter it was built for.
        module = BinaryModule(path=path, display=display, ext=ext, wheel=wheel, symbols=None)
        if "FT153" in selected:
            out.hits += rules.match_naming(module)
        return
    if kind != "elf":
        out.diagnostics.append(Diagnostic(path=path, kind="bad-binary",
                                          message="not an ELF, Mach-O or PE file"))
        out.files[path] = "failed: bad-binary"
        return
    symbols = read_dynamic_symbols(data)
    if isinstance(symbols, str):
        out.diagnostics.append(Diagnostic(path=path, kind="bad-binary", message=symbols))
        out.files[path] = "failed: bad-binary"
        return
    if not symbols.init_functions:
        # A vendored library (`numpy.libs/libopenblas.so`), not a module Python imports.
        out.files[path] = "skipped: not an extension module (no PyInit_ function)"
        return
    module = BinaryModule(path=path, display=display, ext=ext, wheel=wheel, symbols=symbols)
    out.hits += _module_hits(module, selected)
    out.files[path] = "parsed"


def _tree_binary(sf: SourceFile, selected: frozenset[str], out: _Outcome) -> None:
    if sf.size > _LIMITS.max_member_bytes:
        out.diagnostics.append(Diagnostic(
            path=sf.path, kind="too-large",
            message=f"{sf.size} bytes, over the limit of {_LIMITS.max_member_bytes}; not "
                    "analysed"))
        out.files[sf.path] = "skipped: too large"
        return
    try:
        with Path(sf.abspath).open("rb") as fh:
            head = fh.read(8)
            # Only ELF files are parsed; the others need no more than their magic bytes.
            data = head + fh.read() if binary_format(head) == "elf" else head
    except OSError as exc:
        out.diagnostics.append(Diagnostic(path=sf.path, kind="unreadable",
                                          message=f"cannot read: {exc.strerror or exc}"))
        out.files[sf.path] = "failed: unreadable"
        return
    _analyse_bytes(sf.path, sf.path, data, None, selected, out)


def _wheel_binaries(sf: SourceFile, selected: frozenset[str], out: _Outcome) -> None:
    parsed = parse_wheel_name(sf.path.rsplit("/", 1)[-1])
    wheel = parsed if isinstance(parsed, WheelName) else None
    with open_zip(Path(sf.abspath), limits=_LIMITS, label=sf.path) as zr:
        out.diagnostics += zr.diagnostics
        for member in zr.names:
            if not _is_binary_name(member):
                continue
            data = zr.read(member)
            if data is None:
                out.files[f"{sf.path}/{member}"] = "failed: unreadable member"
                continue
            dotted = module_name(member)
            if dotted is not None:
                out.modules[f"{sf.path}/{member}"] = dotted
            display = dotted or member.rsplit("/", 1)[-1]
            _analyse_bytes(f"{sf.path}/{member}", display, data, wheel, selected, out)
        out.diagnostics += zr.read_diagnostics


def analyse(view: TargetView) -> FrontEndResult:
    selected = view.config.selected & rules.RULES
    tree = sorted((f for f in view.files if _is_binary_name(f.path)), key=lambda f: f.path)
    # Wheels below a test folder are test data (the wheels front end says so in the ledger).
    wheels = sorted((f for f in view.files if f.path.lower().endswith(".whl")
                     and not in_test_folder(f.path)), key=lambda f: f.path)
    if not selected:
        return FrontEndResult(files={f.path: "skipped: no binary rule selected" for f in tree})
    out = _Outcome()
    for sf in tree:
        _tree_binary(sf, selected, out)
    # The wheels front end reports the same archive-level problems when it runs; the registry
    # keeps one of each, and this front end must not lose them when it does not run.
    for sf in wheels:
        _wheel_binaries(sf, selected, out)
    return FrontEndResult(hits=tuple(out.hits), diagnostics=tuple(out.diagnostics),
                          files=out.files, modules=out.modules)
