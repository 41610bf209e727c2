"""Reading hostile archives: every problem is a diagnostic, the hostile member is skipped, the
rest are kept, and nothing is ever written outside the private directory.

The hostile archives are generated here (zip bombs with honest and lying sizes, traversal
names, links, devices, duplicates, truncation), never committed.
"""

from __future__ import annotations

import io
import random
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from gilaudit.archives import (
    ArchiveLimits,
    extract_sdist,
    member_problem,
    open_zip,
    read_sdist_members,
    read_zip_members,
)
from gilaudit.archives import tar as _archive_tar

SMALL = ArchiveLimits(max_members=50, max_total_bytes=4 << 20, max_member_bytes=2 << 20,
                      max_ratio=50, ratio_floor_bytes=64 << 10, max_path_length=200)


def _zip(path: Path, members: dict[str, bytes], *, attrs: dict[str, int] | None = None,
         method: int = zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", method) as zf:
            for name, data in members.items():
                info = zipfile.ZipInfo(name.split("#dup")[0])
                info.compress_type = method
                if attrs and name in attrs:
                    info.create_system = 3
                    info.external_attr = attrs[name] << 16
                zf.writestr(info, data)
    return path


def _patch_central_size(path: Path, name: str, declared: int) -> None:
    """Make the central directory lie about one member's inflated size."""
    raw = bytearray(path.read_bytes())
    at = 0
    while True:
        at = raw.find(b"PK\x01\x02", at)
        assert at >= 0, "member not found"
        name_len = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46: at + 46 + name_len] == name.encode():
            struct.pack_into("<L", raw, at + 24, declared)
            break
        at += 4
    path.write_bytes(bytes(raw))


def _noise(size: int) -> bytes:
    """Bytes that do not compress (deterministic)."""
    return random.Random(size).randbytes(size)


def _kinds(diags: list) -> list[str]:
    return sorted(d.kind for d in diags)


# --------------------------------------------------------------------------- names

@pytest.mark.parametrize(("name", "kind"), [
    ("../../evil", "path-traversal"),
    ("pkg/../../evil", "path-traversal"),
    ("/etc/x", "path-traversal"),
    ("C:/Windows/x", "path-traversal"),
    ("c:x", "path-traversal"),
    ("pkg\\..\\..\\evil", "path-traversal"),
    ("a\x00b", "path-traversal"),
    ("x" * 300, "long-member-name"),
])
def test_hostile_names(name: str, kind: str) -> None:
    problem = member_problem(name, SMALL)
    assert problem is not None and problem[0] == kind


@pytest.mark.parametrize("name", ["pkg/mod.py", "pkg/..data/x", "./pkg/x",
                                  "pkg-1.0.dist-info/METADATA"])
def test_ordinary_names(name: str) -> None:
    assert member_problem(name, SMALL) is None


# --------------------------------------------------------------------------- zip

def test_reads_regular_members(tmp_path: Path) -> None:
    path = _zip(tmp_path / "a.whl", {"pkg/__init__.py": b"", "pkg/mod.py": b"x = 1\n",
                                     "pkg/": b""})
    data, diags = read_zip_members(path, limits=SMALL)
    assert data == {"pkg/__init__.py": b"", "pkg/mod.py": b"x = 1\n"}
    assert diags == []


def test_want_reads_only_selected_members(tmp_path: Path) -> None:
    path = _zip(tmp_path / "a.whl", {"a.so": b"\x7fELF", "b.py": b"pass"})
    data, _ = read_zip_members(path, limits=SMALL, want=lambda n: n.endswith(".so"))
    assert list(data) == ["a.so"]


def test_hostile_zip_members_are_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    link = stat.S_IFLNK | 0o777
    fifo = stat.S_IFIFO | 0o644
    path = _zip(tmp_path / "h.whl", {
        "ok/first.py": b"1",
        "../../evil": b"boom",
        "/etc/x": b"boom",
        "C:/x": b"boom",
        "ok\\..\\..\\evil": b"boom",
        "ok/link": b"/etc/passwd",
        "ok/fifo": b"",
        "ok/first.py#dup": b"second copy",
        "ok/last.py": b"2",
    }, attrs={"ok/link": link, "ok/fifo": fifo})
    data, diags = read_zip_members(path, limits=SMALL, label="dist/h.whl")
    assert data == {"ok/first.py": b"1", "ok/last.py": b"2"}
    assert _kinds(diags) == ["duplicate-member", "link-member", "path-traversal",
                             "path-traversal", "path-traversal", "path-traversal",
                             "special-member"]
    assert all(d.path == "dist/h.whl" for d in diags)


def test_zip_bomb_by_declared_ratio(tmp_path: Path) -> None:
    path = _zip(tmp_path / "bomb.whl", {"ok.py": b"1", "zeros.bin": b"\0" * (1 << 20)})
    data, diags = read_zip_members(path, limits=SMALL, label="bomb.whl")
    assert data == {"ok.py": b"1"}
    assert _kinds(diags) == ["zip-bomb"]
    assert diags[0].path == "bomb.whl/zeros.bin"


def test_zip_bomb_that_lies_about_its_size(tmp_path: Path) -> None:
    """Declares 100 bytes, inflates to 1 MiB: read no further than the declaration, and say
    why the member was refused."""
    path = _zip(tmp_path / "liar.whl", {"ok.py": b"1", "liar.bin": b"\0" * (1 << 20)})
    _patch_central_size(path, "liar.bin", 100)
    data, diags = read_zip_members(path, limits=ArchiveLimits(), label="liar.whl")
    assert data == {"ok.py": b"1"}
    assert _kinds(diags) == ["zip-bomb"]


def test_member_over_the_size_limit(tmp_path: Path) -> None:
    blob = _noise(3 << 20)
    path = _zip(tmp_path / "big.whl", {"big.bin": blob, "ok.py": b"1"})
    data, diags = read_zip_members(path, limits=SMALL)
    assert data == {"ok.py": b"1"}
    assert _kinds(diags) == ["too-large"]


def test_total_budget_is_shared_by_all_members(tmp_path: Path) -> None:
    chunk = _noise(3 << 19)  # 1.5 MiB each
    path = _zip(tmp_path / "many.whl", {f"m{i}.bin": chunk for i in range(4)})
    data, diags = read_zip_members(path, limits=SMALL)
    assert len(data) == 2
    assert _kinds(diags) == ["too-large", "too-large"]


def test_too_many_members(tmp_path: Path) -> None:
    path = _zip(tmp_path / "crowd.whl", {f"f{i}.py": b"" for i in range(60)})
    data, diags = read_zip_members(path, limits=SMALL)
    assert data == {}
    assert _kinds(diags) == ["too-many-members"]


@pytest.mark.parametrize("cut", [10, 100, -30])
def test_truncated_zip(tmp_path: Path, cut: int) -> None:
    whole = _zip(tmp_path / "whole.whl", {"a.py": b"a" * 1000, "b.py": b"b" * 1000})
    raw = whole.read_bytes()
    broken = tmp_path / "broken.whl"
    broken.write_bytes(raw[:cut])
    data, diags = read_zip_members(broken, limits=SMALL)
    assert data == {}
    assert _kinds(diags) == ["corrupt-archive"]


def test_not_a_zip_at_all(tmp_path: Path) -> None:
    path = tmp_path / "notazip.whl"
    path.write_bytes(b"hello, world\n" * 10)
    with open_zip(path, limits=SMALL) as zr:
        assert zr.names == ()
        assert _kinds(zr.diagnostics) == ["corrupt-archive"]


def test_damaged_member_data(tmp_path: Path) -> None:
    path = _zip(tmp_path / "crc.whl", {"a.py": b"a" * 5000, "b.py": b"b" * 10})
    raw = bytearray(path.read_bytes())
    start = raw.find(b"PK\x03\x04") + 30 + len("a.py")
    raw[start + 2: start + 6] = b"\xff\xff\xff\xff"  # garble the deflate stream
    path.write_bytes(bytes(raw))
    data, diags = read_zip_members(path, limits=SMALL)
    assert data == {"b.py": b"b" * 10}
    assert _kinds(diags) == ["corrupt-archive"]


def test_encrypted_member(tmp_path: Path) -> None:
    path = _zip(tmp_path / "enc.whl", {"a.py": b"secret", "b.py": b"open"},
                method=zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")
    struct.pack_into("<H", raw, at + 8, 1)  # general purpose flag: encrypted
    path.write_bytes(bytes(raw))
    data, diags = read_zip_members(path, limits=SMALL)
    assert data == {"b.py": b"open"}
    assert _kinds(diags) == ["corrupt-archive"]


def test_lying_central_directory_does_not_overflow_memory(tmp_path: Path) -> None:
    """The raw inflate used to classify a CRC failure is capped at the declared size + 1."""
    path = _zip(tmp_path / "liar.whl", {"liar.bin": b"\0" * (8 << 20)})
    _patch_central_size(path, "liar.bin", 10)
    with open_zip(path, limits=ArchiveLimits()) as zr:
        assert zr.read("liar.bin") is None
        assert _kinds(zr.read_diagnostics) == ["zip-bomb"]


# --------------------------------------------------------------------------- sdists

def _tar(path: Path, mode: str, members: list[tarfile.TarInfo | tuple[str, bytes]],
         *, fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, mode, format=fmt) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


HOSTILE_TAR: list[tarfile.TarInfo | tuple[str, bytes]] = [
    ("pkg-1.0/PKG-INFO", b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"),
    ("pkg-1.0/setup.py", b"from setuptools import setup\nsetup()\n"),
    ("../../evil_outside", b"boom"),
    ("/tmp/gilaudit_absolute_evil", b"boom"),
    ("pkg-1.0\\..\\..\\evil_backslash", b"boom"),
    _special("pkg-1.0/link", tarfile.SYMTYPE, "/etc/passwd"),
    _special("pkg-1.0/hard", tarfile.LNKTYPE, "pkg-1.0/setup.py"),
    _special("pkg-1.0/fifo", tarfile.FIFOTYPE),
    ("pkg-1.0/setup.py", b"second copy"),
    ("pkg-1.0/src/mod.c", b"int x;\n"),
]


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
@pytest.mark.parametrize("use_filter", [True, False])
def test_extract_sdist_skips_hostile_members(tmp_path: Path, mode: str, use_filter: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the standard library's data filter (3.10/3.11 before the security releases)
    # our own checks must be enough.
    monkeypatch.setattr(_archive_tar, "has_data_filter", lambda: use_filter)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    sdist = _tar(work / "pkg-1.0.tar", mode, HOSTILE_TAR)
    dest = work / "out"
    dest.mkdir()
    diags = extract_sdist(sdist, dest, limits=SMALL, label="dist/pkg-1.0.tar.gz")
    assert _files_under(dest) == {"pkg-1.0/PKG-INFO", "pkg-1.0/setup.py", "pkg-1.0/src/mod.c"}
    assert (dest / "pkg-1.0/setup.py").read_bytes().startswith(b"from setuptools")
    assert _kinds(diags) == ["duplicate-member", "link-member", "link-member",
                             "path-traversal", "path-traversal", "path-traversal",
                             "special-member"]
    # Nothing outside the private directory.
    assert _files_under(tmp_path) == {f"a/b/{sdist.name}"} | {
        f"a/b/out/{p}" for p in _files_under(dest)}
    assert not Path("/tmp/gilaudit_absolute_evil").exists()


def test_extract_zip_sdist(tmp_path: Path) -> None:
    sdist = _zip(tmp_path / "pkg-1.0.zip", {"pkg-1.0/PKG-INFO": b"Name: pkg\n",
                                            "../evil": b"boom", "pkg-1.0/a.c": b"int a;"})
    dest = tmp_path / "out"
    dest.mkdir()
    diags = extract_sdist(sdist, dest, limits=SMALL)
    assert _files_under(dest) == {"pkg-1.0/PKG-INFO", "pkg-1.0/a.c"}
    assert _kinds(diags) == ["path-traversal"]
    assert not (tmp_path / "evil").exists()


def test_extract_file_and_folder_with_one_name(tmp_path: Path) -> None:
    sdist = _tar(tmp_path / "x.tar.gz", "w:gz", [("p/a", b"file"), ("p/a/b", b"under")])
    dest = tmp_path / "out"
    dest.mkdir()
    diags = extract_sdist(sdist, dest, limits=SMALL)
    assert _files_under(dest) == {"p/a"}
    assert _kinds(diags) == ["duplicate-member"]


@pytest.mark.parametrize("use_filter", [True, False])
def test_gzip_bomb_stops_the_sdist(tmp_path: Path, use_filter: bool,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_archive_tar, "has_data_filter", lambda: use_filter)
    sdist = _tar(tmp_path / "bomb.tar.gz", "w:gz",
                 [("pkg/first.py", b"1"), ("pkg/zeros", b"\0" * (1 << 20)),
                  ("pkg/zeros2", b"\0" * (1 << 20)), ("pkg/after.py", b"2")])
    dest = tmp_path / "out"
    dest.mkdir()
    limits = ArchiveLimits(max_ratio=10, ratio_floor_bytes=1 << 20)
    diags = extract_sdist(sdist, dest, limits=limits)
    assert _files_under(dest) == {"pkg/first.py"}  # no partial file of the bomb is left
    assert _kinds(diags) == ["zip-bomb"]


def test_bomb_in_a_pax_header_is_stopped(tmp_path: Path) -> None:
    """tarfile reads pax headers into memory itself: the cap must sit below it."""
    info = tarfile.TarInfo("pkg/a.py")
    info.pax_headers = {"comment": "a" * (4 << 20)}
    sdist = tmp_path / "pax.tar.gz"
    with tarfile.open(sdist, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info, io.BytesIO(b""))
    dest = tmp_path / "out"
    dest.mkdir()
    diags = extract_sdist(sdist, dest, limits=ArchiveLimits(max_ratio=20,
                                                            ratio_floor_bytes=1 << 20))
    assert _kinds(diags) == ["zip-bomb"]
    assert _files_under(dest) == set()


def test_member_too_large_in_sdist(tmp_path: Path) -> None:
    blob = _noise(3 << 20)
    sdist = _tar(tmp_path / "big.tar.gz", "w:gz", [("p/big", blob), ("p/ok", b"1")])
    dest = tmp_path / "out"
    dest.mkdir()
    diags = extract_sdist(sdist, dest, limits=SMALL)
    assert _files_under(dest) == {"p/ok"}
    assert _kinds(diags) == ["too-large"]


def test_too_many_members_in_sdist(tmp_path: Path) -> None:
    sdist = _tar(tmp_path / "crowd.tar.gz", "w:gz", [(f"p/f{i}", b"") for i in range(60)])
    dest = tmp_path / "out"
    dest.mkdir()
    diags = extract_sdist(sdist, dest, limits=SMALL)
    assert len(_files_under(dest)) == SMALL.max_members
    assert _kinds(diags) == ["too-many-members"]


def test_truncated_sdist_keeps_what_came_before(tmp_path: Path) -> None:
    whole = _tar(tmp_path / "w.tar.gz", "w:gz",
                 [("p/a.py", b"a" * 100), ("p/b.bin", _noise(100_000))])
    raw = whole.read_bytes()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(raw[: len(raw) // 2])
    dest = tmp_path / "out"
    dest.mkdir()
    diags = extract_sdist(broken, dest, limits=SMALL)
    assert "p/a.py" in _files_under(dest)
    assert _kinds(diags) == ["corrupt-archive"]


def test_garbage_sdist(tmp_path: Path) -> None:
    path = tmp_path / "pkg-1.0.tar.gz"
    path.write_bytes(b"\x1f\x8bnot really gzip")
    dest = tmp_path / "out"
    dest.mkdir()
    assert _kinds(extract_sdist(path, dest, limits=SMALL)) == ["corrupt-archive"]


def test_extract_needs_an_existing_private_dir(tmp_path: Path) -> None:
    sdist = _tar(tmp_path / "x.tar.gz", "w:gz", [("p/a", b"1")])
    with pytest.raises(ValueError, match="existing directory"):
        extract_sdist(sdist, tmp_path / "missing", limits=SMALL)


def test_read_sdist_members_in_memory(tmp_path: Path) -> None:
    sdist = _tar(tmp_path / "pkg-1.0.tar.gz", "w:gz", HOSTILE_TAR)
    data, diags = read_sdist_members(sdist, limits=SMALL,
                                     want=lambda n: n.endswith("/PKG-INFO"))
    assert list(data) == ["pkg-1.0/PKG-INFO"]
    assert "path-traversal" in _kinds(diags)
    assert _files_under(tmp_path) == {"pkg-1.0.tar.gz"}


def test_raw_inflate_probe_handles_stored_members(tmp_path: Path) -> None:
    path = _zip(tmp_path / "s.whl", {"a.bin": b"abc" * 100}, method=zipfile.ZIP_STORED)
    _patch_central_size(path, "a.bin", 3)
    with open_zip(path, limits=SMALL) as zr:
        assert zr.read("a.bin") is None
        assert _kinds(zr.read_diagnostics) == ["corrupt-archive"]
    assert zlib  # the module under test uses zlib's raw inflate for deflate members only
