"""A precompiled prelude (Python.h plus the compatibility declarations), built once per set of
macro definitions and reused by every translation unit: most of a small file's parse time is
otherwise spent re-reading the Python headers."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from gilaudit import __version__
from gilaudit.frontends.c.flags import Toolchain, binding_search

__all__ = ["precompiled_prelude"]


def precompiled_prelude(tool: Toolchain, base: tuple[str, ...], folder: Path,
                        binding: str | None = None) -> str | None:
    """Path of a PCH for these base arguments, building it if needed; None if it cannot be.
    With ``binding`` (`pybind11/pybind11.h`), that header comes precompiled too, from the
    build requirements' or gilaudit's own copy: most of a binding unit's parse time is spent
    in it."""
    search = binding_search(tool) if binding else ()
    try:
        prelude = Path(tool.prelude).read_bytes()
        # clang refuses a PCH whose inputs changed since it was built: key on their stamps.
        stamps = [f"{p}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in (
            Path(tool.prelude), Path(tool.python_include) / "Python.h",
            Path(tool.python_include) / "pyconfig.h",
            *(Path(d) / binding for d in search[1::2] if binding)) if p.exists()]
    except OSError:
        return None
    key = hashlib.sha256(
        "\0".join((__version__, tool.fingerprint(), *stamps, *base, *search,
                   binding or "")).encode() + prelude
    ).hexdigest()[:24]
    path = folder / f"prelude-{key}.pch"
    if path.is_file():
        return str(path)
    source = tool.prelude
    if binding:
        source = str(folder / f"prelude-{key}.h")
        folder.mkdir(parents=True, exist_ok=True)
        Path(source).write_text(f'#include "{tool.prelude}"\n#include <{binding}>\n')
    try:
        import clang.cindex as ci  # noqa: PLC0415 - heavy; only when parsing

        folder.mkdir(parents=True, exist_ok=True)
        lang = "c++-header" if "c++" in base[:2] else "c-header"
        args = ["-x", lang, *base[2:], *search]
        tu = ci.Index.create().parse(source, args=args,
                                     options=ci.TranslationUnit.PARSE_INCOMPLETE)
        if any(d.severity >= 3 for d in tu.diagnostics):
            return None
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".pch-", suffix=".tmp")
        os.close(fd)
        tu.save(tmp)
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - any failure means: parse with the plain prelude
        return None
    return str(path)
