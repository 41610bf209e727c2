"""The dynamic symbol table of a shared object, read with pyelftools from bytes in memory.
The binary is never loaded: a hostile or truncated file is a reason string, not a crash."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Symbol, SymbolTableSection

__all__ = ["BinaryFormat", "DynamicSymbols", "binary_format", "read_dynamic_symbols"]

BinaryFormat = Literal["elf", "mach-o", "pe", "unknown"]
_MACHO = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
          b"\xca\xfe\xba\xbe")  # 32/64-bit, both byte orders, and universal ("fat") files
_MAX_SYMBOLS = 2_000_000  # far above any real extension (numpy's largest has ~2,000)


@dataclass(frozen=True, kw_only=True, slots=True)
class DynamicSymbols:
    imported: frozenset[str]  # undefined: resolved from libpython / libc at load time
    exported: frozenset[str]  # defined, global or weak

    @property
    def init_functions(self) -> tuple[str, ...]:
        """`PyInit_<name>` (and 3.15's `PyModExport_<name>`): what makes it an extension."""
        return tuple(sorted(s for s in self.exported
                            if s.startswith(("PyInit_", "PyModExport_"))))


def binary_format(head: bytes) -> BinaryFormat:
    if head[:4] == b"\x7fELF":
        return "elf"
    if head[:4] in _MACHO:
        return "mach-o"
    if head[:2] == b"MZ":
        return "pe"
    return "unknown"


def _symbols(elf: ELFFile) -> list[Symbol]:
    """Symbols of `.dynsym`, or, when section headers were stripped, of the dynamic segment
    (which is what the loader itself uses)."""
    section = elf.get_section_by_name(".dynsym")
    if isinstance(section, SymbolTableSection):
        return list(_bounded(section.iter_symbols()))
    for segment in elf.iter_segments():
        if isinstance(segment, DynamicSegment):
            return list(_bounded(segment.iter_symbols()))
    return []


def _bounded(symbols: Iterable[Symbol]) -> list[Symbol]:
    out: list[Symbol] = []
    for sym in symbols:
        out.append(sym)
        if len(out) > _MAX_SYMBOLS:
            raise ValueError(f"more than {_MAX_SYMBOLS} dynamic symbols")
    return out


def read_dynamic_symbols(data: bytes) -> DynamicSymbols | str:
    """The imported and exported dynamic symbols, or why they cannot be read."""
    if binary_format(data) != "elf":
        return "not an ELF file"
    imported: set[str] = set()
    exported: set[str] = set()
    try:
        elf = ELFFile(io.BytesIO(data))
        symbols = _symbols(elf)
        for sym in symbols:
            name = sym.name
            if not name:
                continue
            if sym["st_shndx"] == "SHN_UNDEF":
                imported.add(name)
            elif sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK"):
                exported.add(name)
    except Exception as exc:  # noqa: BLE001 - pyelftools on hostile bytes can raise anything
        # (ELFError, struct and construct errors, IndexError, UnicodeDecodeError, ...); for
        # input we do not trust, any of them means "unreadable binary", never a crash.
        reason = str(exc) or type(exc).__name__
        return f"truncated or malformed ELF: {reason}"
    if not symbols:
        return "no dynamic symbol table"
    return DynamicSymbols(imported=frozenset(imported), exported=frozenset(exported))
