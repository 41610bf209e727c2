"""What the child lists as drivable in a module, and what it refuses to call and why."""

from __future__ import annotations

import sys
from pathlib import Path

from fixtures.dynamic.build import FIXTURES, build_extension
from gilaudit.dynamic.surface import discover_surface


def test_extension_surface(tmp_path: Path) -> None:
    build_extension(FIXTURES / "racy_counter.c", tmp_path)
    got = discover_surface(sys.executable, "racy_counter", import_paths=[str(tmp_path)],
                           timeout=20)
    assert got.imported.status == "ok"
    kinds = {i.name: i.kind for i in got.items}
    assert kinds["Counter"] == "class"
    assert kinds["Counter.increment"] == "method"
    assert kinds["Counter.value"] == "property"
    assert kinds["add"] == "function" and kinds["get"] == "function"
    assert all(i.drivable for i in got.items)


def test_dangerous_names_are_listed_with_a_reason_not_called(tmp_path: Path) -> None:
    marker = tmp_path / "called"
    (tmp_path / "tools.py").write_text(
        f"MARK = {str(marker)!r}\n"
        "def _touch():\n    open(MARK, 'w').close()\n"
        "def compute(x):\n    return x * 2\n"
        "def exit_now():\n    _touch()\n"
        "def fork_workers():\n    _touch()\n"
        "def remove_cache():\n    _touch()\n"
        "class Pool:\n"
        "    def kill_all(self):\n        _touch()\n"
        "    def __len__(self):\n        return 0\n"
        "from os.path import join\n")
    got = discover_surface(sys.executable, "tools", import_paths=[str(tmp_path)], timeout=20,
                           python_callables=True)
    by_name = {i.name: i for i in got.items}
    assert by_name["compute"].drivable
    for name in ("exit_now", "fork_workers", "remove_cache", "Pool.kill_all"):
        assert by_name[name].skip, name
    assert by_name["Pool.__len__"].kind == "special"
    assert "join" not in by_name  # re-exported from os.path: not this module's
    assert not marker.exists()  # listing never calls anything


def test_a_module_that_crashes_at_import_has_no_surface(tmp_path: Path) -> None:
    build_extension(FIXTURES / "import_crash.c", tmp_path)
    got = discover_surface(sys.executable, "import_crash", import_paths=[str(tmp_path)],
                           timeout=20)
    assert got.imported.status == "crashed" and got.items == ()
