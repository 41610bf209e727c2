"""Getting a release's sources into the benchmark's cache: sdists from PyPI through pip
(checked against the data file's name and sha256, unpacked with tarfile's `data` filter), and
Debian source packages through `tools/debian-source.sh` (a private apt configuration)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .config import Release

__all__ = ["FetchError", "debian_tree", "sdist_tree"]


class FetchError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sdist_tree(name: str, release: Release, cache: Path) -> Path:
    """The unpacked sdist's top directory (downloaded and unpacked once)."""
    sdists = cache / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    archive = sdists / release.filename
    if not archive.is_file():
        with tempfile.TemporaryDirectory(dir=sdists) as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "--disable-pip-version-check", "-q", f"{name}=={release.version}", "-d", tmp],
                capture_output=True, text=True, timeout=600, check=False)
            got = Path(tmp) / release.filename
            if not got.is_file():
                raise FetchError(f"pip download {name}=={release.version} gave no "
                                 f"{release.filename}: {proc.stderr.strip()[-300:]}")
            got.replace(archive)
    digest = _sha256(archive)
    if digest != release.sha256:
        raise FetchError(f"{archive}: sha256 {digest}, expected {release.sha256}")
    stem = release.filename.removesuffix(".tar.gz").removesuffix(".zip")
    dest = cache / "src" / stem
    if not dest.is_dir():
        _unpack(archive, cache / "src")
    if not dest.is_dir():
        raise FetchError(f"{archive.name} did not unpack into {stem}/")
    return dest


def _unpack(archive: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                target = (into / info.filename).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise FetchError(f"{archive.name}: {info.filename} leaves the tree")
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")


def debian_tree(release: Release, cache: Path, script: Path) -> Path:
    """The unpacked upstream tree of a Debian source package."""
    proc = subprocess.run(["bash", str(script), release.suite, release.package,
                           str(cache / "debian")], capture_output=True, text=True,
                          timeout=1800, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise FetchError(proc.stderr.strip() or f"{script.name} printed nothing")
    return Path(lines[-1])
