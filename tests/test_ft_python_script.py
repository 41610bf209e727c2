"""tools/ft-python.sh where it cannot build: one sentence on stderr, a non-zero exit, nothing
printed on stdout (which callers read as the interpreter's path). The build itself runs in CI,
whose free-threaded tests use the interpreter it prints."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

SCRIPT = REPO / "tools" / "ft-python.sh"
pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None,
                                reason="apt-get is not on this machine (not a Debian system)")


def _run(tmp_path: Path, apt_etc: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GILAUDIT_CACHE_DIR": str(tmp_path / "cache"),
           "GILAUDIT_FT_APT_ETC": str(apt_etc)}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_no_archive_in_the_apt_sources(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "other.sources").write_text(
        "Types: deb\nURIs: https://example.invalid/apt\nSuites: x\nComponents: main\n")
    got = _run(tmp_path, etc)
    assert got.returncode != 0 and got.stdout == ""
    assert "no Debian archive is named" in got.stderr
    assert len(got.stderr.strip().splitlines()) == 1


def test_an_unreachable_archive(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    # port 9 (discard) on loopback: refused at once
    (etc / "sources.list").write_text("deb http://127.0.0.1:9/debian bookworm main\n")
    got = _run(tmp_path, etc)
    assert got.returncode != 0 and got.stdout == ""
    last = got.stderr.strip().splitlines()[-1]
    assert "could not be reached" in last, got.stderr
    # nothing outside the cache dir was touched, and no build started
    assert not (tmp_path / "cache" / "ft-python" / "build-ft").exists()
