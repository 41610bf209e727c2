"""The package index client: release files, core metadata and verified downloads.

Any index that speaks the standard simple API works (PyPI, a mirror, a private index):
pypi-simple fetches and parses the project pages (PEP 503 HTML and PEP 691 JSON, chosen by
content negotiation; PEP 658/714 metadata; PEP 592 yanking) and downloads the files; requests
carries the HTTP with retries from urllib3. This module adds what a dashboard run needs on
top: size caps, a download cache keyed by sha256, metadata read from a wheel or an sdist
without unpacking it, and one `IndexFailure` with one sentence for every way an index or a
file can be wrong, so that one bad package becomes a recorded status and the run goes on.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests
import urllib3.exceptions
from packaging.metadata import parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from pypi_simple import (
    DigestMismatchError,
    DistributionPackage,
    NoSuchProjectError,
    PyPISimple,
    UnsupportedContentTypeError,
    UnsupportedRepoVersionError,
)
from pypi_simple.client import USER_AGENT
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from gilaudit import __version__
from gilaudit.dashboard.model import ProjectMeta, ReleaseFile
from gilaudit.errors import GilauditError

__all__ = ["MAX_METADATA_BYTES", "MAX_SCAN_BYTES", "IndexClient", "IndexFailure",
           "from_package", "latest_version", "parse_metadata", "release_file",
           "sdist_metadata_bytes", "wheel_metadata_bytes"]

# Core metadata is a few kB; the largest real ones (a long description inlined) are about
# 1 MB. Anything far above is not metadata.
MAX_METADATA_BYTES = 16 * 1024 * 1024
# How much of an sdist tarball is inflated while looking for its PKG-INFO: a gzip stream can
# only be skipped by inflating it, so a bomb placed before PKG-INFO must stop the search.
MAX_SCAN_BYTES = 1 << 30
MAX_SCAN_MEMBERS = 100_000
_CHUNK = 64 * 1024

_SHA256 = re.compile(r"[0-9a-f]{64}")
# PEP 508 names: what an index can have a page for. Anything else never reaches a URL.
_PROJECT_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar")
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError,
                   EOFError, zlib.error, lzma.LZMAError, ValueError, NotImplementedError,
                   RuntimeError)


class IndexFailure(GilauditError):
    """The index, or a file it serves, cannot be used. ``reason`` is one sentence."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason, status)
        self.reason = reason
        self.status = status  # the HTTP status when the index answered with an error

    def __str__(self) -> str:
        return self.reason


# -- release files (pure) --------------------------------------------------------------------

def release_file(filename: str, url: str, hashes: Mapping[str, str], *,
                 metadata_url: str | None = None,
                 metadata_hashes: Mapping[str, str] | None = None,
                 yanked: bool = False, size: int | None = None) -> ReleaseFile:
    """A `ReleaseFile` from what an index page says about one file. Never raises: a file name
    that is neither a valid wheel nor a valid sdist name is kind "other"."""
    sha256 = _sha256_of(hashes)
    meta_sha256 = _sha256_of(metadata_hashes or {})
    common: dict[str, Any] = {"filename": filename, "url": url, "sha256": sha256,
                              "metadata_url": metadata_url, "metadata_sha256": meta_sha256,
                              "yanked": yanked, "size": size}
    if filename.endswith(".whl"):
        try:
            name, version, _build, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return ReleaseFile(kind="other", version="", **common)
        if not _PROJECT_NAME.fullmatch(name):
            return ReleaseFile(kind="other", version="", **common)
        return ReleaseFile(kind="wheel", version=str(version),
                           python_tags=tuple(sorted({t.interpreter for t in tags})),
                           abi_tags=tuple(sorted({t.abi for t in tags})),
                           platform_tags=tuple(sorted({t.platform for t in tags})), **common)
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidVersion):
        return ReleaseFile(kind="other", version="", **common)
    # packaging does not check the name part of an sdist's file name.
    if not _PROJECT_NAME.fullmatch(name):
        return ReleaseFile(kind="other", version="", **common)
    return ReleaseFile(kind="sdist", version=str(version), **common)


def from_package(pkg: DistributionPackage) -> ReleaseFile:
    """Map pypi-simple's view of one file to the dashboard's."""
    return release_file(pkg.filename, pkg.url, pkg.digests,
                        metadata_url=pkg.metadata_url if pkg.has_metadata else None,
                        metadata_hashes=pkg.metadata_digests, yanked=pkg.is_yanked,
                        size=pkg.size)


def _sha256_of(hashes: Mapping[str, str]) -> str | None:
    value = hashes.get("sha256")
    # Kept even when malformed, so that verification fails loudly rather than being skipped;
    # only a well-formed digest is ever used to build a cache path (see `_cache_path`).
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def latest_version(files: Iterable[ReleaseFile]) -> str | None:
    """The newest version with at least one non-yanked wheel or sdist; a pre-release only when
    no final release has any."""
    versions: dict[Version, str] = {}
    for f in files:
        if f.yanked or f.kind not in ("wheel", "sdist"):
            continue
        try:
            versions.setdefault(Version(f.version), f.version)
        except InvalidVersion:
            continue
    final = [v for v in versions if not v.is_prerelease]
    pool = final or list(versions)
    return versions[max(pool)] if pool else None


# -- metadata (pure, from bytes or a local file) -----------------------------------------------

def parse_metadata(data: bytes, *, name: str = "", version: str = "") -> ProjectMeta:
    """Core metadata (METADATA / PKG-INFO) as a `ProjectMeta`. Tolerant: fields that do not
    parse are dropped, ``name``/``version`` fill in what the file does not say, and every
    string is kept exactly as written (it is shown escaped, never interpreted)."""
    raw, _unparsed = parse_email(data.decode("utf-8", errors="replace"))
    urls = raw.get("project_urls") or {}
    return ProjectMeta(
        name=raw.get("name") or name, version=raw.get("version") or version,
        summary=raw.get("summary") or "", requires_python=raw.get("requires_python"),
        classifiers=tuple(raw.get("classifiers") or ()),
        project_urls=tuple((str(k), str(v)) for k, v in urls.items()),
        home_page=raw.get("home_page") or "")


def wheel_metadata_bytes(path: Path, *, cap: int = MAX_METADATA_BYTES) -> bytes:
    """The ``*.dist-info/METADATA`` of a wheel, read from the zip without extracting it."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i for i in zf.infolist()
                     if re.fullmatch(r"[^/]+\.dist-info/METADATA", i.filename)]
            if not names:
                raise IndexFailure(f"{path.name} has no .dist-info/METADATA.")
            # Several dist-info directories: prefer the one named after the wheel itself.
            stem = "-".join(path.name.split("-")[:2]).lower()
            names.sort(key=lambda i: (not i.filename.lower().startswith(stem), i.filename))
            info = names[0]
            if info.file_size > cap:
                raise IndexFailure(f"{path.name}: METADATA is {info.file_size:,} bytes, more "
                                   f"than the {cap:,} gilaudit reads.")
            with zf.open(info) as member:
                return _read_capped(member, cap, f"{path.name}: METADATA")
    except IndexFailure:
        raise
    except _ARCHIVE_ERRORS as exc:
        raise IndexFailure(f"{path.name} is not a readable wheel (zip): {_why(exc)}.") from exc


def sdist_metadata_bytes(path: Path, *, cap: int = MAX_METADATA_BYTES,
                         max_scan_bytes: int = MAX_SCAN_BYTES) -> bytes:
    """An sdist's top-level ``PKG-INFO``, read from the tarball or zip as a stream: nothing is
    written to disk, links and special members are ignored, and the search stops before
    inflating more than ``max_scan_bytes`` (a bomb) or `MAX_SCAN_MEMBERS` members."""
    name = path.name
    try:
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if _is_pkg_info(info.filename) and not info.is_dir():
                        if info.file_size > cap:
                            raise IndexFailure(f"{name}: PKG-INFO is {info.file_size:,} bytes, "
                                               f"more than the {cap:,} gilaudit reads.")
                        with zf.open(info) as member:
                            return _read_capped(member, cap, f"{name}: PKG-INFO")
            raise IndexFailure(f"{name} has no PKG-INFO.")
        scanned = 0
        # "r|*": a forward-only stream, so a member is inflated only if we walk past it.
        with tarfile.open(path, mode="r|*") as tf:
            for count, entry in enumerate(tf, start=1):
                if _is_pkg_info(entry.name) and entry.isreg():
                    if entry.size > cap:
                        raise IndexFailure(f"{name}: PKG-INFO is {entry.size:,} bytes, more "
                                           f"than the {cap:,} gilaudit reads.")
                    handle = tf.extractfile(entry)
                    if handle is None:
                        break
                    return _read_capped(handle, cap, f"{name}: PKG-INFO")
                scanned += entry.size
                if scanned > max_scan_bytes or count >= MAX_SCAN_MEMBERS:
                    raise IndexFailure(f"{name}: no PKG-INFO before {count:,} members and "
                                       f"{scanned:,} bytes, more than gilaudit inflates "
                                       f"to find it.")
        raise IndexFailure(f"{name} has no PKG-INFO.")
    except IndexFailure:
        raise
    except _ARCHIVE_ERRORS as exc:
        raise IndexFailure(f"{name} is not a readable sdist archive: {_why(exc)}.") from exc


def _is_pkg_info(member: str) -> bool:
    parts = member.removeprefix("./").split("/")
    return len(parts) == 2 and parts[0] not in ("", ".", "..") and parts[1] == "PKG-INFO"


def _read_capped(stream: IO[bytes], cap: int, what: str) -> bytes:
    # The header's size can lie (zip) or the stream can be longer than announced: read one
    # byte past the cap to know.
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise IndexFailure(f"{what} is more than the {cap:,} bytes gilaudit reads.")
    return data


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200].rstrip(".")


def _name_from_filename(filename: str) -> str:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return ""


# -- the client ------------------------------------------------------------------------------

class _TooLarge(Exception):
    pass


@dataclass(slots=True)
class _SizeCap:
    """pypi-simple's progress-tracker hook, used to stop a download at the size cap (the
    library then deletes the partial file)."""

    cap: int
    seen: int = 0

    def __call__(self, content_length: int | None) -> _SizeCap:
        if content_length is not None and content_length > self.cap:
            raise _TooLarge(content_length)
        return self

    def __enter__(self) -> _SizeCap:
        return self

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                 _tb: TracebackType | None) -> None:
        return None

    def update(self, increment: int) -> None:
        self.seen += increment
        if self.seen > self.cap:
            raise _TooLarge(self.seen)


def _rebuild(kwargs: dict[str, Any]) -> IndexClient:
    return IndexClient(**kwargs)


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexClient:
    """One index, one HTTP session, one download cache. Thread-compatible like requests (one
    client per worker); pickles without its session, which is made anew on the other side."""

    url: str  # the simple index root: "https://pypi.org/simple/", "http://127.0.0.1:PORT/simple/"
    cache_dir: Path  # downloads cached by sha256: cache_dir/sha256/<aa>/<hash>/<filename>
    timeout: float = 30.0  # seconds to connect, and between two reads
    retries: int = 2  # on connection errors, timeouts and 5xx, with a short backoff
    max_download_bytes: int = 512 * 1024 * 1024
    _session: requests.Session = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_session", _make_session(self.retries))

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], IndexClient], tuple[Any, ...]]:
        return _rebuild, ({"url": self.url, "cache_dir": self.cache_dir,
                           "timeout": self.timeout, "retries": self.retries,
                           "max_download_bytes": self.max_download_bytes},)

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    @property
    def _simple(self) -> PyPISimple:
        return PyPISimple(endpoint=self.url, session=self._session)

    # -- pages -------------------------------------------------------------------------------

    def releases(self, name: str) -> list[ReleaseFile]:
        """Every file on the project's page, in the index's order."""
        if not _PROJECT_NAME.fullmatch(name.strip()):
            raise IndexFailure(f"{name!r} is not a valid project name.")
        project = canonicalize_name(name.strip())
        simple = self._simple
        page_url = simple.get_project_url(project)
        try:
            page = simple.get_project_page(project, timeout=self.timeout)
        except NoSuchProjectError as exc:
            raise IndexFailure(f"No such project on the index: {project} ({page_url} "
                               f"answered 404).", 404) from exc
        except UnsupportedContentTypeError as exc:
            raise IndexFailure(f"The index page {page_url} is neither HTML nor JSON "
                               f"(Content-Type {exc.content_type!r}).") from exc
        except UnsupportedRepoVersionError as exc:
            raise IndexFailure(f"The index page {page_url} uses repository version "
                               f"{exc.declared_version}, newer than gilaudit "
                               f"understands.") from exc
        except requests.RequestException as exc:
            raise _request_failure(exc, page_url, self.timeout) from exc
        except ValueError as exc:  # JSON that does not decode or has the wrong shape
            raise IndexFailure(f"The index page {page_url} could not be parsed as a PEP 691 "
                               f"JSON or PEP 503 HTML project page: {_why(exc)}.") from exc
        return [from_package(pkg) for pkg in page.packages]

    def latest_version(self, files: list[ReleaseFile]) -> str | None:
        return latest_version(files)

    # -- metadata ----------------------------------------------------------------------------

    def metadata(self, file: ReleaseFile) -> ProjectMeta:
        """The file's core metadata: from its PEP 658 metadata file when the index offers one
        (the distribution itself is then not downloaded), else from the downloaded wheel's
        METADATA or the sdist's PKG-INFO."""
        fallback = {"name": _name_from_filename(file.filename), "version": file.version}
        if file.metadata_url:
            try:
                path = self._fetch(file.metadata_url, _safe_name(file.filename) + ".metadata",
                                   file.metadata_sha256, MAX_METADATA_BYTES,
                                   "the metadata file")
            except IndexFailure as exc:
                # An index that announces metadata and then has none: the file still has it.
                if exc.status != 404:
                    raise
            else:
                return parse_metadata(_read_file(path, MAX_METADATA_BYTES), **fallback)
        if file.kind == "wheel":
            return parse_metadata(wheel_metadata_bytes(self.download(file)), **fallback)
        if file.kind == "sdist":
            return parse_metadata(sdist_metadata_bytes(self.download(file)), **fallback)
        raise IndexFailure(f"{file.filename} is neither a wheel nor an sdist: gilaudit cannot "
                           f"read its metadata.")

    # -- downloads ---------------------------------------------------------------------------

    def download(self, file: ReleaseFile) -> Path:
        """The file in the cache, verified against the index's sha256; a cached copy whose
        hash still matches is used without asking the index."""
        return self._fetch(file.url, _safe_name(file.filename), file.sha256,
                           self.max_download_bytes, "the download")

    def _fetch(self, url: str, filename: str, sha256: str | None, cap: int, what: str) -> Path:
        if sha256 is not None and _SHA256.fullmatch(sha256):
            cached = _cache_path(self.cache_dir, sha256, filename)
            if cached.is_file():
                if _file_sha256(cached) == sha256:
                    return cached
                cached.unlink(missing_ok=True)  # damaged in the cache: fetch it again
        tmp_dir = self.cache_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="dl-", suffix="-" + filename)
        os.close(fd)
        tmp = Path(tmp_name)
        digests = {"sha256": sha256} if sha256 else {}
        pkg = DistributionPackage(filename=filename, url=url, project=None, version=None,
                                  package_type=None, digests=digests, requires_python=None,
                                  has_sig=None)
        try:
            self._simple.download_package(pkg, tmp, verify=bool(digests),
                                          progress=_SizeCap(cap), timeout=self.timeout)
            actual = _file_sha256(tmp)
            final = _cache_path(self.cache_dir, actual, filename)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # atomic: concurrent workers never see half a file
            return final
        except DigestMismatchError as exc:
            raise IndexFailure(f"Hash mismatch for {filename}: the index says sha256 "
                               f"{exc.expected_digest}, the download is {exc.actual_digest}."
                               ) from exc
        except _TooLarge as exc:
            raise IndexFailure(f"{what.capitalize()} of {filename} is larger than the "
                               f"{cap:,} bytes gilaudit accepts ({exc.args[0]:,} bytes "
                               f"seen).") from exc
        except requests.RequestException as exc:
            raise _request_failure(exc, url, self.timeout) from exc
        except OSError as exc:
            raise IndexFailure(f"Cannot write {filename} into the cache "
                               f"{self.cache_dir}: {exc.strerror or exc}.") from exc
        finally:
            tmp.unlink(missing_ok=True)


def _make_session(retries: int) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = f"gilaudit/{__version__} {USER_AGENT}"
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, redirect=5,
                  status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                  backoff_factor=0.2, backoff_max=2.0,
                  # The final 5xx answer is kept so that its status can be reported.
                  raise_on_status=False,
                  # A hostile or confused index must not make a worker sleep for an hour.
                  respect_retry_after_header=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _request_failure(exc: BaseException, url: str, timeout: float) -> IndexFailure:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = int(exc.response.status_code)
        return IndexFailure(f"The index answered HTTP {status} for {url}.", status)
    if isinstance(exc, requests.Timeout) or _timed_out(exc):
        return IndexFailure(f"The index did not answer within {timeout:g} s for {url}.")
    if isinstance(exc, requests.ConnectionError):
        return IndexFailure(f"Could not connect to the index for {url}: {_why(exc)}.")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                        requests.exceptions.MissingSchema)):
        return IndexFailure(f"The index gave a URL gilaudit cannot fetch: {url}.")
    return IndexFailure(f"The request for {url} failed: {_why(exc)}.")


def _timed_out(exc: BaseException) -> bool:
    # requests reports read timeouts that outlived the retries as a ConnectionError around
    # urllib3's MaxRetryError; the timeout is its reason.
    reasons = [getattr(arg, "reason", None) for arg in exc.args]
    # A refused connection is a NewConnectionError, which urllib3 derives from its timeout.
    return any(isinstance(r, urllib3.exceptions.TimeoutError)
               and not isinstance(r, urllib3.exceptions.NewConnectionError) for r in reasons)


def _safe_name(filename: str) -> str:
    """The file name as a single, harmless path component (it comes from the index)."""
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", filename.replace("\\", "/").rsplit("/", 1)[-1])
    name = name.lstrip(".")[:200]
    return name or "download"


def _cache_path(cache_dir: Path, sha256: str, filename: str) -> Path:
    return cache_dir / "sha256" / sha256[:2] / sha256 / filename


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_file(path: Path, cap: int) -> bytes:
    with path.open("rb") as fh:
        return _read_capped(fh, cap, path.name)
