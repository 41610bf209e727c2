"""The dashboard's index client against a real index on 127.0.0.1 (tests/dashboard_index_server)."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard_index_server import IndexServer, build_sdist, build_wheel
from gilaudit.dashboard.index import (
    IndexClient,
    IndexFailure,
    latest_version,
    release_file,
    sdist_metadata_bytes,
)
from gilaudit.dashboard.model import FT_CLASSIFIER, ReleaseFile

FT = f"{FT_CLASSIFIER} :: Stable"
HOSTILE_SUMMARY = '<script>alert("summary")</script> & <b>bold</b>'
HOSTILE_NAME = '<img src=x onerror="alert(1)">'
HOSTILE_URL = 'javascript:alert("home")'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An index tree: `ready` 1.0 (wheels + sdist), 2.0 (cp313t wheel with PEP 658 metadata,
    abi3 wheel without, sdist) and a yanked 3.0; `plain` with only an sdist."""
    base = tmp_path / "index"
    ready = base / "ready"
    build_wheel(ready, "ready", "1.0", "cp313-cp313-manylinux_2_17_x86_64")
    build_sdist(ready, "ready", "1.0")
    build_wheel(ready, "ready", "2.0", classifiers=[FT], summary="Ready for free-threading.",
                requires_python=">=3.13", extra_headers=[("Home-page", "https://example.org")])
    build_wheel(ready, "ready", "2.0", "cp312-abi3-manylinux_2_17_x86_64",
                write_metadata_file=False)
    build_sdist(ready, "ready", "2.0", classifiers=[FT], summary="Ready (sdist).")
    build_wheel(ready, "ready", "3.0")
    build_sdist(base / "Plain_Pkg", "plain-pkg", "0.5", summary="Only an sdist.",
                files={"src/mod.c": b"int x;\n"})
    return base


@pytest.fixture
def index(root: Path) -> Iterator[IndexServer]:
    with IndexServer(root, yanked={"ready-3.0-cp313-cp313t-manylinux_2_17_x86_64.whl":
                                   "broken build"}) as server:
        yield server


def client(server: IndexServer, tmp_path: Path, *, timeout: float = 2.0, retries: int = 1,
           max_download_bytes: int = 512 << 20) -> IndexClient:
    return IndexClient(url=server.url, cache_dir=tmp_path / "cache", timeout=timeout,
                       retries=retries, max_download_bytes=max_download_bytes)


def by_name(files: list[ReleaseFile]) -> dict[str, ReleaseFile]:
    return {f.filename: f for f in files}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- release files ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "html", "negotiate"])
def test_releases_both_formats(root: Path, tmp_path: Path, fmt: str) -> None:
    with IndexServer(root, format=fmt, yanked={
            "ready-3.0-cp313-cp313t-manylinux_2_17_x86_64.whl": "broken build"}) as server:
        files = by_name(client(server, tmp_path).releases("Ready"))
    assert len(files) == 6
    ft = files["ready-2.0-cp313-cp313t-manylinux_2_17_x86_64.whl"]
    wheel_path = root / "ready" / ft.filename
    assert ft.kind == "wheel" and ft.version == "2.0"
    assert ft.sha256 == sha256(wheel_path)
    assert ft.python_tags == ("cp313",) and ft.abi_tags == ("cp313t",)
    assert ft.platform_tags == ("manylinux_2_17_x86_64",)
    assert ft.free_threaded and not ft.abi3 and not ft.yanked
    assert ft.url == f"{server.base}/files/ready/{ft.filename}"
    assert ft.metadata_url == ft.url + ".metadata"
    assert ft.metadata_sha256 == sha256(wheel_path.with_name(ft.filename + ".metadata"))
    abi3 = files["ready-2.0-cp312-abi3-manylinux_2_17_x86_64.whl"]
    assert abi3.abi3 and not abi3.free_threaded and abi3.metadata_url is None
    sdist = files["ready-2.0.tar.gz"]
    assert sdist.kind == "sdist" and sdist.version == "2.0" and sdist.metadata_url is None
    assert sdist.sha256 == sha256(root / "ready" / sdist.filename)
    assert files["ready-3.0-cp313-cp313t-manylinux_2_17_x86_64.whl"].yanked
    # PEP 700 sizes only exist in JSON: they tell which format was served.
    assert (ft.size == wheel_path.stat().st_size) == (fmt != "html")
    assert (ft.size is None) == (fmt == "html")


def test_releases_canonical_name_and_sdist_only_project(index: IndexServer,
                                                        tmp_path: Path) -> None:
    files = client(index, tmp_path).releases("plain.PKG")
    assert [f.filename for f in files] == ["plain_pkg-0.5.tar.gz"]
    assert index.requests_to("/simple/") == ["/simple/plain-pkg/"]


@pytest.mark.parametrize(("filename", "kind", "version"), [
    ("numpy-2.1.0-cp313-cp313t-musllinux_1_2_aarch64.whl", "wheel", "2.1.0"),
    ("pkg-1.0-py3-none-any.whl", "wheel", "1.0"),
    ("pkg-1.0.tar.gz", "sdist", "1.0"),
    ("pkg-1.0.zip", "sdist", "1.0"),
    ("pkg.whl", "other", ""),
    ("pkg-notaversion-py3-none-any.whl", "other", ""),
    ("pkg-1.0-py2.7.egg", "other", ""),
    ("pkg-1.0.exe", "other", ""),
    ("../../etc/passwd", "other", ""),
    ("", "other", ""),
    ("<script>-1.0.tar.gz", "other", ""),
])
def test_release_file_never_raises(filename: str, kind: str, version: str) -> None:
    f = release_file(filename, "https://example.org/x", {"sha256": "AB" * 32, "md5": "x"})
    assert (f.kind, f.version, f.filename) == (kind, version, filename)
    assert f.sha256 == "ab" * 32
    assert release_file(filename, "u", {"md5": "x"}).sha256 is None


def test_release_file_compressed_tags() -> None:
    f = release_file("pkg-1.0-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                     "u", {})
    assert f.platform_tags == ("manylinux2014_x86_64", "manylinux_2_17_x86_64")
    assert f.abi_tags == ("cp313t",) and f.free_threaded


def rf(version: str, *, kind: str = "wheel", yanked: bool = False) -> ReleaseFile:
    return ReleaseFile(filename=f"x-{version}", url="u", sha256=None, kind=kind,
                       version=version, yanked=yanked)


@pytest.mark.parametrize(("files", "expected"), [
    ([rf("1.0"), rf("2.0"), rf("1.5")], "2.0"),
    ([rf("1.0"), rf("2.0", yanked=True)], "1.0"),
    ([rf("1.0"), rf("2.0rc1"), rf("2.0.dev3")], "1.0"),
    ([rf("2.0a1"), rf("2.0b2", kind="sdist")], "2.0b2"),
    ([rf("1.0", yanked=True)], None),
    ([rf("9.0", kind="other"), rf("1.0")], "1.0"),
    ([rf("", kind="other"), rf("junk")], None),
    ([rf("1.10"), rf("1.9")], "1.10"),
    ([], None),
])
def test_latest_version(files: list[ReleaseFile], expected: str | None) -> None:
    assert latest_version(files) == expected


def test_latest_version_from_the_index_skips_yanked(index: IndexServer, tmp_path: Path) -> None:
    c = client(index, tmp_path)
    assert c.latest_version(c.releases("ready")) == "2.0"


# -- metadata --------------------------------------------------------------------------------

def test_pep658_metadata_without_downloading_the_wheel(index: IndexServer,
                                                       tmp_path: Path) -> None:
    c = client(index, tmp_path)
    ft = by_name(c.releases("ready"))["ready-2.0-cp313-cp313t-manylinux_2_17_x86_64.whl"]
    index.clear_log()
    meta = c.metadata(ft)
    assert (meta.name, meta.version, meta.summary) == ("ready", "2.0",
                                                       "Ready for free-threading.")
    assert meta.requires_python == ">=3.13" and meta.classifiers == (FT,)
    assert meta.home_page == "https://example.org" and meta.declares_free_threading
    assert index.log == [f"/files/ready/{ft.filename}.metadata"]
    # The metadata file is cached by its hash as well.
    assert c.metadata(ft) == meta
    assert index.log == [f"/files/ready/{ft.filename}.metadata"]


def test_metadata_from_a_wheel_without_metadata_file(index: IndexServer,
                                                     tmp_path: Path) -> None:
    c = client(index, tmp_path)
    abi3 = by_name(c.releases("ready"))["ready-2.0-cp312-abi3-manylinux_2_17_x86_64.whl"]
    index.clear_log()
    meta = c.metadata(abi3)
    assert (meta.name, meta.version, meta.summary) == ("ready", "2.0", "A test package.")
    assert index.log == [f"/files/ready/{abi3.filename}"]


def test_metadata_from_an_sdist(index: IndexServer, tmp_path: Path) -> None:
    c = client(index, tmp_path)
    [sdist] = c.releases("plain-pkg")
    meta = c.metadata(sdist)
    assert (meta.name, meta.version, meta.summary) == ("plain-pkg", "0.5", "Only an sdist.")
    assert not meta.declares_free_threading


def test_announced_metadata_missing_falls_back_to_the_wheel(index: IndexServer,
                                                            tmp_path: Path) -> None:
    c = client(index, tmp_path)
    ft = by_name(c.releases("ready"))["ready-2.0-cp313-cp313t-manylinux_2_17_x86_64.whl"]
    index.faults[f"/files/ready/{ft.filename}.metadata"] = 404
    index.clear_log()
    assert c.metadata(ft).classifiers == (FT,)
    assert index.log == [f"/files/ready/{ft.filename}.metadata", f"/files/ready/{ft.filename}"]


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_hostile_metadata_is_kept_as_text(tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "index"
    headers = [("Home-page", HOSTILE_URL), ("Project-URL", f"Docs, {HOSTILE_URL}"),
               ("Project-URL", '"><svg onload=alert(2)>, https://example.org/"><x>')]
    build_wheel(root / "evil", "evil", "1.0", summary=HOSTILE_SUMMARY,
                metadata_name=HOSTILE_NAME, extra_headers=headers,
                classifiers=["<b>Not :: A :: Classifier</b>"])
    build_sdist(root / "evil", "evil", "1.0", summary=HOSTILE_SUMMARY,
                metadata_name=HOSTILE_NAME, extra_headers=headers,
                classifiers=["<b>Not :: A :: Classifier</b>"])
    with IndexServer(root, format=fmt) as server:
        c = client(server, tmp_path)
        for f in c.releases("evil"):
            meta = c.metadata(f)
            assert meta.name == HOSTILE_NAME and meta.summary == HOSTILE_SUMMARY
            assert meta.home_page == HOSTILE_URL
            assert meta.project_urls == (("Docs", HOSTILE_URL),
                                         ('"><svg onload=alert(2)>',
                                          'https://example.org/"><x>'))
            assert meta.classifiers == ("<b>Not :: A :: Classifier</b>",)


def test_junk_metadata_is_tolerated(tmp_path: Path) -> None:
    root = tmp_path / "index"
    wheel = build_wheel(root / "junky", "junky", "1.0")
    wheel.with_name(wheel.name + ".metadata").write_bytes(
        b"\xff\xfe\x00garbage\nNo-Colon-Line\nName junk\n\n" + bytes(range(256)))
    with IndexServer(root) as server:
        c = client(server, tmp_path)
        [f] = c.releases("junky")
        meta = c.metadata(f)
    assert (meta.name, meta.version) == ("junky", "1.0")  # from the file name


def test_wheel_without_metadata_and_sdist_without_pkg_info(tmp_path: Path) -> None:
    root = tmp_path / "index"
    build_wheel(root / "broken", "broken", "1.0", metadata=False)
    build_sdist(root / "broken", "broken", "1.0", pkg_info=False, files={"a.c": b"int a;"})
    with IndexServer(root) as server:
        c = client(server, tmp_path)
        files = by_name(c.releases("broken"))
        with pytest.raises(IndexFailure, match=r"has no \.dist-info/METADATA"):
            c.metadata(files["broken-1.0-cp313-cp313t-manylinux_2_17_x86_64.whl"])
        with pytest.raises(IndexFailure, match="has no PKG-INFO"):
            c.metadata(files["broken-1.0.tar.gz"])


def test_not_an_archive(tmp_path: Path) -> None:
    root = tmp_path / "index"
    (root / "fake").mkdir(parents=True)
    (root / "fake" / "fake-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    (root / "fake" / "fake-1.0.tar.gz").write_bytes(b"not a tarball")
    (root / "fake" / "fake-1.0.exe").write_bytes(b"MZ")
    with IndexServer(root) as server:
        c = client(server, tmp_path)
        files = by_name(c.releases("fake"))
        with pytest.raises(IndexFailure, match="not a readable wheel"):
            c.metadata(files["fake-1.0-py3-none-any.whl"])
        with pytest.raises(IndexFailure, match="not a readable sdist"):
            c.metadata(files["fake-1.0.tar.gz"])
        with pytest.raises(IndexFailure, match="neither a wheel nor an sdist"):
            c.metadata(files["fake-1.0.exe"])


def test_hostile_sdists(tmp_path: Path) -> None:
    root = tmp_path / "index"
    build_sdist(root / "bomb", "bomb", "1.0", hostile="bomb", bomb_size=64 << 20,
                summary="boom")
    build_sdist(root / "trav", "trav", "1.0", hostile="traversal", summary="climb")
    with IndexServer(root) as server:
        c = client(server, tmp_path)
        [bomb] = c.releases("bomb")
        [trav] = c.releases("trav")
        start = time.monotonic()
        assert c.metadata(bomb).summary == "boom"
        assert time.monotonic() - start < 5  # PKG-INFO comes first: the bomb is not inflated
        assert c.metadata(trav).summary == "climb"
    assert not (tmp_path / "evil.c").exists() and not (tmp_path.parent / "evil.c").exists()
    # What the builders made: the members the extraction code must refuse.
    with tarfile.open(root / "trav" / "trav-1.0.tar.gz") as tf:
        names = {m.name: m for m in tf.getmembers()}
    assert "../../evil.c" in names and "/tmp/gilaudit-evil.c" in names
    assert names["trav-1.0/etc"].issym() and names["trav-1.0/etc"].linkname == "/etc"
    with tarfile.open(root / "bomb" / "bomb-1.0.tar.gz") as tf:
        assert tf.getmember("bomb-1.0/src/bomb.c").size == 64 << 20
    assert (root / "bomb" / "bomb-1.0.tar.gz").stat().st_size < 1 << 20


def test_bomb_before_pkg_info_stops_the_search(tmp_path: Path) -> None:
    path = build_sdist(tmp_path, "bomb", "1.0", hostile="bomb", bomb_size=8 << 20,
                       pkg_info=False)
    with pytest.raises(IndexFailure, match="no PKG-INFO before 2 members"):
        sdist_metadata_bytes(path, max_scan_bytes=1 << 20)


def test_zip_sdist_pkg_info(tmp_path: Path) -> None:
    path = tmp_path / "z-1.0.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("z-1.0/src/a.c", "int a;")
        zf.writestr("z-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: z\nVersion: 1.0\n\n")
    assert b"Name: z" in sdist_metadata_bytes(path)
    big = tmp_path / "big-1.0.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big-1.0/PKG-INFO", b"\0" * (2 << 20))
    with pytest.raises(IndexFailure, match="more than the"):
        sdist_metadata_bytes(big, cap=1 << 20)


# -- downloads -------------------------------------------------------------------------------

def test_download_is_cached_by_hash(index: IndexServer, tmp_path: Path) -> None:
    c = client(index, tmp_path)
    [sdist] = c.releases("plain-pkg")
    assert sdist.sha256 is not None
    index.clear_log()
    path = c.download(sdist)
    assert path == (tmp_path / "cache" / "sha256" / sdist.sha256[:2] / sdist.sha256
                    / sdist.filename)
    assert sha256(path) == sdist.sha256
    assert index.log == [f"/files/Plain_Pkg/{sdist.filename}"]
    # A fresh client (another worker) reuses it without a request.
    assert client(index, tmp_path).download(sdist) == path
    assert index.log == [f"/files/Plain_Pkg/{sdist.filename}"]
    # A damaged cached copy is fetched again.
    path.write_bytes(b"damaged")
    assert sha256(c.download(sdist)) == sdist.sha256
    assert len(index.log) == 2
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def test_download_hash_mismatch(index: IndexServer, tmp_path: Path) -> None:
    c = client(index, tmp_path)
    [good] = c.releases("plain-pkg")
    index.faults[f"/files/Plain_Pkg/{good.filename}"] = "wrong-hash"
    [bad] = c.releases("plain-pkg")
    assert bad.sha256 == "0" * 64
    with pytest.raises(IndexFailure, match=r"^Hash mismatch for plain_pkg-0\.5\.tar\.gz"):
        c.download(bad)
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))


def test_metadata_hash_mismatch(index: IndexServer, tmp_path: Path) -> None:
    c = client(index, tmp_path)
    name = "ready-2.0-cp313-cp313t-manylinux_2_17_x86_64.whl"
    index.faults[f"/files/ready/{name}.metadata"] = "wrong-hash"
    ft = by_name(c.releases("ready"))[name]
    with pytest.raises(IndexFailure, match="Hash mismatch"):
        c.metadata(ft)
    index.faults["ready"] = "wrong-hash"  # every file of the project
    assert {f.sha256 for f in c.releases("ready")} == {"0" * 64}


def test_download_without_index_hash_is_cached_under_its_own(index: IndexServer,
                                                             tmp_path: Path) -> None:
    c = client(index, tmp_path)
    [sdist] = c.releases("plain-pkg")
    unhashed = release_file(sdist.filename, sdist.url, {})
    path = c.download(unhashed)
    assert path.parent.name == sha256(path) == sdist.sha256


@pytest.mark.parametrize("fault", [None, "no-length"])
def test_oversized_download(index: IndexServer, tmp_path: Path, fault: str | None) -> None:
    c = client(index, tmp_path, max_download_bytes=100)
    [sdist] = c.releases("plain-pkg")
    if fault:
        index.faults[f"/files/Plain_Pkg/{sdist.filename}"] = fault
    with pytest.raises(IndexFailure, match=r"larger than the 100 bytes gilaudit accepts"):
        c.download(sdist)
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))


def test_hostile_file_name_stays_in_the_cache(tmp_path: Path, index: IndexServer) -> None:
    c = client(index, tmp_path)
    [sdist] = c.releases("plain-pkg")
    evil = release_file("../../../evil.tar.gz", sdist.url, {"sha256": sdist.sha256 or ""})
    path = c.download(evil)
    assert path.is_relative_to(tmp_path / "cache") and path.name == "evil.tar.gz"
    bad_hash = release_file(sdist.filename, sdist.url, {"sha256": "../../x"})
    with pytest.raises(IndexFailure, match="Hash mismatch"):
        c.download(bad_hash)


# -- index failures --------------------------------------------------------------------------

def test_no_such_project(index: IndexServer, tmp_path: Path) -> None:
    with pytest.raises(IndexFailure, match=r"^No such project on the index: nope") as exc:
        client(index, tmp_path).releases("nope")
    assert exc.value.status == 404 and "\n" not in exc.value.reason


@pytest.mark.parametrize("name", ["", "-x", "../../etc", "a b", "<script>", "x/y"])
def test_invalid_project_names_make_no_request(index: IndexServer, tmp_path: Path,
                                               name: str) -> None:
    with pytest.raises(IndexFailure, match="not a valid project name"):
        client(index, tmp_path).releases(name)
    assert index.log == []


def test_server_error_is_retried(index: IndexServer, tmp_path: Path) -> None:
    index.faults["ready"] = 500
    with pytest.raises(IndexFailure, match=r"^The index answered HTTP 500 for http") as exc:
        client(index, tmp_path, retries=2).releases("ready")
    assert exc.value.status == 500
    assert index.log == ["/simple/ready/"] * 3
    index.faults["ready"] = 403  # a client error is not retried
    index.clear_log()
    with pytest.raises(IndexFailure, match="HTTP 403"):
        client(index, tmp_path, retries=2).releases("ready")
    assert index.log == ["/simple/ready/"]


def test_download_server_error(index: IndexServer, tmp_path: Path) -> None:
    c = client(index, tmp_path)
    [sdist] = c.releases("plain-pkg")
    index.faults[f"/files/Plain_Pkg/{sdist.filename}"] = 503
    with pytest.raises(IndexFailure, match="HTTP 503"):
        c.download(sdist)
    assert len(index.requests_to("/files/")) == 2


def test_hang_times_out_within_a_bound(root: Path, tmp_path: Path) -> None:
    with IndexServer(root, faults={"ready": "hang"}, hang_seconds=20) as server:
        c = client(server, tmp_path, timeout=0.5, retries=1)
        start = time.monotonic()
        with pytest.raises(IndexFailure, match=r"did not answer within 0\.5 s"):
            c.releases("ready")
        elapsed = time.monotonic() - start
        assert server.log == ["/simple/ready/"] * 2
    assert 0.9 < elapsed < 5


@pytest.mark.parametrize(("fault", "message"), [
    ("junk", r"neither HTML nor JSON \(Content-Type 'application/octet-stream'\)"),
    ("text", r"neither HTML nor JSON \(Content-Type 'text/plain'\)"),
    ("bad-json", r"could not be parsed as a PEP 691 JSON or PEP 503 HTML project page"),
])
def test_pages_that_are_not_index_pages(index: IndexServer, tmp_path: Path, fault: str,
                                        message: str) -> None:
    index.faults["ready"] = fault
    with pytest.raises(IndexFailure, match=message) as exc:
        client(index, tmp_path).releases("ready")
    assert "\n" not in exc.value.reason and len(exc.value.reason) < 400


def test_connection_refused(root: Path, tmp_path: Path) -> None:
    server = IndexServer(root).start()
    c = client(server, tmp_path)
    [sdist] = c.releases("plain-pkg")
    server.stop()
    with pytest.raises(IndexFailure, match=r"^Could not connect to the index"):
        c.releases("plain-pkg")
    with pytest.raises(IndexFailure, match=r"^Could not connect to the index"):
        c.download(sdist)


def test_unfetchable_url(index: IndexServer, tmp_path: Path) -> None:
    c = client(index, tmp_path)
    for url in ("file:///etc/passwd", "javascript:alert(1)", "not a url"):
        with pytest.raises(IndexFailure, match="cannot fetch"):
            c.download(release_file("x-1.0.tar.gz", url, {}))


def test_client_and_failure_pickle(tmp_path: Path) -> None:
    c = IndexClient(url="http://127.0.0.1:1/simple/", cache_dir=tmp_path, timeout=1.0)
    copy = pickle.loads(pickle.dumps(c))
    assert copy == c and copy.timeout == 1.0
    failure = pickle.loads(pickle.dumps(IndexFailure("It broke.", 500)))
    assert (str(failure), failure.status) == ("It broke.", 500)


def test_builders_make_valid_wheels(tmp_path: Path) -> None:
    path = build_wheel(tmp_path, "My.Pkg", "1.2", "cp312-abi3-manylinux_2_17_x86_64",
                       files={"my_pkg/__init__.py": b"", "my_pkg/_ext.abi3.so": b"\x7fELF"})
    assert path.name == "my_pkg-1.2-cp312-abi3-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(path) as zf:
        record = zf.read("my_pkg-1.2.dist-info/RECORD").decode()
        wheel = zf.read("my_pkg-1.2.dist-info/WHEEL").decode()
        assert zf.testzip() is None
    assert "Tag: cp312-abi3-manylinux_2_17_x86_64" in wheel and "Root-Is-Purelib: false" in wheel
    assert "my_pkg/_ext.abi3.so,sha256=" in record
    assert path.with_name(path.name + ".metadata").read_bytes().startswith(
        b"Metadata-Version: 2.1\nName: My.Pkg\nVersion: 1.2\n")
    with tarfile.open(build_sdist(tmp_path, "My.Pkg", "1.2")) as tf:
        assert tf.getnames()[:2] == ["my_pkg-1.2", "my_pkg-1.2/PKG-INFO"]
        member = tf.extractfile("my_pkg-1.2/PKG-INFO")
        assert member is not None and b"Name: My.Pkg" in member.read()
