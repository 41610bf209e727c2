"""Reproducer scripts: gilaudit_repro.py with its PARAMS filled in, one file per problem."""

from __future__ import annotations

import pprint
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_reproducer", "write_reproducer", "write_tsan_reproducer"]

_TEMPLATE = Path(__file__).with_name("childside") / "gilaudit_repro.py"
_TSAN_TEMPLATE = Path(__file__).with_name("childside") / "gilaudit_tsan_repro.py"
_PLACEHOLDER = "PARAMS = {}  # type: Dict[str, Any]  # filled in by gilaudit\n"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def render_reproducer(params: dict[str, Any], *, python: str, template: Path = _TEMPLATE) -> str:
    """The script's text. ``params`` holds only JSON-like values, so its pprint is valid
    Python for any interpreter the script may run under. ``template``: another childside
    script with the same PARAMS line (a test's reproducer)."""
    text = template.read_text(encoding="utf-8")
    body = "PARAMS = " + pprint.pformat(params, width=96, sort_dicts=True) + "\n"
    header = (f"# Run it with the interpreter gilaudit used:\n#   {python} THIS_FILE\n")
    return text.replace(_PLACEHOLDER, header + body, 1)


def write_reproducer(params: dict[str, Any], *, python: str, directory: Path,
                     taken: set[str], template: Path = _TEMPLATE) -> Path:
    """Write one script under ``directory``; ``taken`` keeps names unique within a run."""
    who = params.get("calls") or []
    label = "+".join(c["name"] for c in who) if who else "module"
    stem = _UNSAFE.sub("_", f"{params['module']}-{label}-{params['category']}")[:120]
    name, n = f"{stem}.py", 2
    while name in taken:
        name, n = f"{stem}-{n}.py", n + 1
    taken.add(name)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(render_reproducer(params, python=python, template=template),
                    encoding="utf-8")
    path.chmod(0o755)
    return path


def write_tsan_reproducer(params: dict[str, Any], *, python: str, directory: Path,
                          taken: set[str], kind: str, sites: Sequence[tuple[str, int]],
                          suppressions: Path | None) -> Path:
    """A hammer reproducer for ``params`` and, beside it, the script to run: it runs the
    hammer under the TSan interpreter and exits 1 when TSan reports ``kind`` at ``sites``
    again. The suppressions file is copied beside them (once per directory)."""
    inner = write_reproducer(params, python=python, directory=directory, taken=taken)
    copied = None
    if suppressions is not None:
        copied = directory / "tsan-suppressions.txt"
        if not copied.exists():
            shutil.copyfile(suppressions, copied)
    wrapper = {"inner": inner.name, "python": python, "kind": kind,
               "sites": [[path, line] for path, line in sites],
               "suppressions": copied.name if copied else None,
               "module": params.get("module"), "category": params.get("category")}
    name = inner.stem + "-tsan.py"
    taken.add(name)
    path = directory / name
    path.write_text(render_reproducer(wrapper, python=python, template=_TSAN_TEMPLATE),
                    encoding="utf-8")
    path.chmod(0o755)
    return path
