"""A real package index on 127.0.0.1 for the dashboard's tests, and builders of the test
distributions it serves. Stdlib only (plus `packaging`).

    with IndexServer(root) as index:      # root/<project>/<files>
        client = IndexClient(url=index.url, cache_dir=...)

The index speaks PEP 503 HTML and PEP 691 JSON (chosen by the Accept header, or forced with
``format=``), gives sha256 hashes, and PEP 658/714 metadata attributes for every file that has
a ``<file>.metadata`` beside it. Files are served from ``/files/<project>/<file>``. Pages are
made from the directory at each request, so tests may add files while it runs.

Faults (``faults=`` or ``index.faults[key] = ...`` at any time). A key is a project name (the
fault applies to its page ``/simple/<project>/``) or an exact request path starting with "/":
    404, 500, ... any int  the status, with a short text body
    "hang"                 accept the request and never answer (until ``hang_seconds``)
    "junk"                 200, binary junk, application/octet-stream
    "text"                 200, plain text, text/plain
    "bad-json"             200, PEP 691 content type, JSON of the wrong shape
    "no-length"            the normal answer without Content-Length (read until close)
    "wrong-hash"           advertise a wrong sha256: for all of a project's files (project
                           key), or for one file or one ``.metadata`` file (its path)
``log`` lists the path of every request, in order, so a test can tell what was fetched.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.parser
import hashlib
import html
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

__all__ = ["BOMB_SIZE", "IndexServer", "build_sdist", "build_wheel"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
JUNK = bytes(range(256)) * 16
WRONG_SHA256 = "0" * 64
BOMB_SIZE = 300 * 1024 * 1024  # above gilaudit's 256 MiB per member; ~300 kB compressed, ~1 s

Fault = int | str


class IndexServer:
    """A PEP 503/691 index over ``root/<project>/<files>`` in a background thread."""

    def __init__(self, root: Path, *, format: str = "negotiate",
                 faults: Mapping[str, Fault] | None = None, hang_seconds: float = 30.0,
                 yanked: Mapping[str, str] | None = None) -> None:
        if format not in ("negotiate", "html", "json"):
            raise ValueError(f"format must be negotiate, html or json, not {format!r}")
        self.root = Path(root)
        self.format = format
        self.faults: dict[str, Fault] = dict(faults or {})
        self.hang_seconds = hang_seconds
        self.yanked: dict[str, str] = dict(yanked or {})  # filename -> reason ("" = none)
        self.log: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/simple/"

    def start(self) -> IndexServer:
        handler = type("Handler", (_Handler,), {"index": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"index-server-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the port (later connections are refused)."""
        self._stopping.set()  # wakes the handlers that "hang"
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.stop()

    # -- the log -----------------------------------------------------------------------------

    def record(self, path: str) -> None:
        with self._lock:
            self.log.append(path)

    def requests_to(self, prefix: str) -> list[str]:
        with self._lock:
            return [p for p in self.log if p.startswith(prefix)]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- the tree ----------------------------------------------------------------------------

    def project_dirs(self) -> dict[str, Path]:
        """Canonical name -> directory."""
        if not self.root.is_dir():
            return {}
        return {canonicalize_name(d.name): d for d in sorted(self.root.iterdir()) if d.is_dir()}

    def files_of(self, project: str) -> list[dict[str, Any]]:
        """What the index says about each file of a project (PEP 691 field names)."""
        directory = self.project_dirs()[project]
        project_wrong = self.faults.get(project) == "wrong-hash"
        out = []
        for path in sorted(directory.iterdir()):
            if not path.is_file() or path.name.endswith(".metadata"):
                continue
            file_path = f"/files/{quote(directory.name)}/{quote(path.name)}"
            entry: dict[str, Any] = {
                "filename": path.name, "url": file_path, "size": path.stat().st_size,
                "hashes": {"sha256": WRONG_SHA256 if project_wrong
                           or self.faults.get(file_path) == "wrong-hash"
                           else _sha256(path.read_bytes())}}
            meta = path.with_name(path.name + ".metadata")
            if meta.is_file():
                data = meta.read_bytes()
                wrong = self.faults.get(file_path + ".metadata") == "wrong-hash"
                digest = {"sha256": WRONG_SHA256 if wrong else _sha256(data)}
                entry["core-metadata"] = digest
                entry["dist-info-metadata"] = digest  # PEP 714: the old name, for old clients
                requires = email.parser.BytesParser().parsebytes(data).get("Requires-Python")
                if requires:
                    entry["requires-python"] = str(requires)
            if path.name in self.yanked:
                entry["yanked"] = self.yanked[path.name] or True
            out.append(entry)
        return out


class _Handler(BaseHTTPRequestHandler):
    index: IndexServer  # set on the subclass made per server
    server_version = "gilaudit-test-index/1"

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the test output stays clean; `index.log` is the record

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        index = self.index
        index.record(path)
        parts = [p for p in path.split("/") if p]
        project = canonicalize_name(parts[1]) if len(parts) == 2 and parts[0] == "simple" \
            else None
        fault = index.faults.get(path)
        if fault is None and project is not None:
            fault = index.faults.get(project)
        if fault == "wrong-hash":
            fault = None  # applied when the page is made, not when the file is served
        if fault is not None and fault != "no-length" and self._fault(fault):
            return
        self._close_delimited = fault == "no-length"
        try:
            if parts == ["simple"]:
                self._index_page()
            elif project is not None:
                self._project_page(project)
            elif len(parts) == 3 and parts[0] == "files":
                self._file(parts[1], parts[2])
            else:
                self._send(404, "text/plain", b"not found\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout, a size cap): nothing to answer

    # -- faults ------------------------------------------------------------------------------

    def _fault(self, fault: Fault) -> bool:
        if isinstance(fault, int):
            self._send(fault, "text/plain", f"injected HTTP {fault}\n".encode())
        elif fault == "hang":
            self.index._stopping.wait(self.index.hang_seconds)
            self.close_connection = True
        elif fault == "junk":
            self._send(200, "application/octet-stream", JUNK)
        elif fault == "text":
            self._send(200, "text/plain", b"this is not an index page\n")
        elif fault == "bad-json":
            self._send(200, JSON_TYPE, b'{"meta": {"api-version": "1.1"}, "name": 5, '
                                       b'"files": "none"}')
        else:
            raise ValueError(f"unknown fault {fault!r}")
        return True

    # -- pages -------------------------------------------------------------------------------

    def _wants_json(self) -> bool:
        if self.index.format != "negotiate":
            return self.index.format == "json"
        q = _accept_q(self.headers.get("Accept", ""))
        best_html = max(q.get(HTML_TYPE, 0.0), q.get("text/html", 0.0), q.get("*/*", 0.0))
        return q.get(JSON_TYPE, 0.0) > 0 and q.get(JSON_TYPE, 0.0) >= best_html

    def _html_type(self) -> str:
        q = _accept_q(self.headers.get("Accept", ""))
        return HTML_TYPE if q.get(HTML_TYPE, 0.0) > 0 else "text/html; charset=utf-8"

    def _index_page(self) -> None:
        names = sorted(self.index.project_dirs())
        if self._wants_json():
            body = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
            self._send(200, JSON_TYPE, json.dumps(body).encode())
            return
        links = "".join(f'<a href="{quote(n)}/">{html.escape(n)}</a><br/>\n' for n in names)
        self._send(200, self._html_type(), _html_doc("Simple index", links))

    def _project_page(self, project: str) -> None:
        if project not in self.index.project_dirs():
            self._send(404, "text/plain", b"no such project\n")
            return
        files = self.index.files_of(project)
        if self._wants_json():
            versions = sorted({_version_of(f["filename"]) for f in files} - {""})
            body = {"meta": {"api-version": "1.1"}, "name": project, "files": files,
                    "versions": versions}
            self._send(200, JSON_TYPE, json.dumps(body).encode())
            return
        links = []
        for f in files:
            # Relative links, as mirrors write them: the client joins them to the page URL.
            href = f"../..{f['url']}#sha256={f['hashes']['sha256']}"
            attrs = [f'href="{html.escape(href)}"']
            if "requires-python" in f:
                attrs.append(f'data-requires-python="{html.escape(f["requires-python"])}"')
            if "core-metadata" in f:
                value = f"sha256={f['core-metadata']['sha256']}"
                attrs += [f'data-core-metadata="{value}"', f'data-dist-info-metadata="{value}"']
            if "yanked" in f:
                reason = f["yanked"] if isinstance(f["yanked"], str) else ""
                attrs.append(f'data-yanked="{html.escape(reason)}"')
            links.append(f"<a {' '.join(attrs)}>{html.escape(f['filename'])}</a><br/>\n")
        self._send(200, self._html_type(), _html_doc(f"Links for {project}", "".join(links)))

    def _file(self, project_dir: str, filename: str) -> None:
        directory = self.index.root / project_dir
        path = directory / filename
        if project_dir in (".", "..") or filename in (".", "..") or not path.is_file() \
                or path.resolve().parent != directory.resolve():
            self._send(404, "text/plain", b"no such file\n")
            return
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if not self._close_delimited:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        with path.open("rb") as fh:
            while chunk := fh.read(64 * 1024):
                self.wfile.write(chunk)
        self.close_connection = True

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if not getattr(self, "_close_delimited", False):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


def _accept_q(header: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in header.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            out[media.lower()] = max(q, out.get(media.lower(), 0.0))
    return out


def _html_doc(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" '
            f'content="1.1"><title>{html.escape(title)}</title></head>\n<body>\n'
            f"<h1>{html.escape(title)}</h1>\n{body}</body></html>\n").encode()


def _version_of(filename: str) -> str:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except ValueError:
        return ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- building test distributions -----------------------------------------------------------

def _dist_name(name: str) -> str:
    """The name as it appears in wheel and sdist file names (PEP 427 / PEP 625)."""
    return canonicalize_name(name).replace("-", "_")


def _one_line(value: str) -> str:
    # A header value with a newline would start a new header: hostile text stays one value.
    return " ".join(value.splitlines())


def core_metadata(name: str, version: str, *, summary: str = "",
                  classifiers: Iterable[str] = (), requires_python: str | None = None,
                  extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {_one_line(name)}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {_one_line(summary)}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Classifier: {_one_line(c)}" for c in classifiers]
    lines += [f"{k}: {_one_line(v)}" for k, v in extra_headers]
    return ("\n".join(lines) + "\n\n").encode()


def build_wheel(dir: Path, name: str, version: str,
                tag: str = "cp313-cp313t-manylinux_2_17_x86_64", *,
                files: Mapping[str, bytes] | None = None, classifiers: Iterable[str] = (),
                summary: str = "A test package.", requires_python: str | None = None,
                write_metadata_file: bool = True, metadata_name: str | None = None,
                extra_headers: Sequence[tuple[str, str]] = (), metadata: bool = True) -> Path:
    """A valid wheel (dist-info METADATA, WHEEL, RECORD) in ``dir``, and its PEP 658
    ``<wheel>.metadata`` beside it when ``write_metadata_file``. ``metadata=False`` leaves
    METADATA out (a broken wheel). ``tag`` may be compressed ("cp313-abi3-a.b")."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    dist = _dist_name(name)
    info_dir = f"{dist}-{version}.dist-info"
    meta = core_metadata(metadata_name or name, version, summary=summary,
                         classifiers=classifiers, requires_python=requires_python,
                         extra_headers=extra_headers)
    tags = sorted(str(t) for t in parse_tag(tag))
    pure = all(t.endswith("-none-any") for t in tags)
    wheel_file = ("Wheel-Version: 1.0\nGenerator: gilaudit-tests\n"
                  f"Root-Is-Purelib: {'true' if pure else 'false'}\n"
                  + "".join(f"Tag: {t}\n" for t in tags)).encode()
    members: dict[str, bytes] = dict(files or {})
    if metadata:
        members[f"{info_dir}/METADATA"] = meta
    members[f"{info_dir}/WHEEL"] = wheel_file
    record = "".join(f"{p},sha256={_record_hash(d)},{len(d)}\n" for p, d in members.items())
    members[f"{info_dir}/RECORD"] = (record + f"{info_dir}/RECORD,,\n").encode()
    path = dir / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0)), data,
                        compress_type=zipfile.ZIP_DEFLATED)
    if write_metadata_file and metadata:
        path.with_name(path.name + ".metadata").write_bytes(meta)
    return path


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read in chunks: a bomb member is never held in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def build_sdist(dir: Path, name: str, version: str, *,
                files: Mapping[str, bytes] | None = None, classifiers: Iterable[str] = (),
                summary: str = "A test package.", requires_python: str | None = None,
                hostile: str | None = None, pkg_info: bool = True,
                bomb_size: int = BOMB_SIZE, metadata_name: str | None = None,
                extra_headers: Sequence[tuple[str, str]] = ()) -> Path:
    """A ``name-version.tar.gz`` in ``dir`` with PKG-INFO at ``name-version/PKG-INFO`` (first,
    as setuptools writes it; ``pkg_info=False`` leaves it out) and ``files`` under that
    directory. ``hostile``: "bomb" adds ``src/bomb.c``, ``bomb_size`` zero bytes (made as a
    stream); "traversal" adds ``../../evil.c``, an absolute ``/tmp/gilaudit-evil.c`` and a
    symlink ``etc`` to /etc."""
    if hostile not in (None, "bomb", "traversal"):
        raise ValueError(f"hostile must be None, 'bomb' or 'traversal', not {hostile!r}")
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    top = f"{_dist_name(name)}-{version}"
    path = dir / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=9, format=tarfile.PAX_FORMAT) as tf:
        _add_dir(tf, top)
        if pkg_info:
            _add_bytes(tf, f"{top}/PKG-INFO", core_metadata(
                metadata_name or name, version, summary=summary, classifiers=classifiers,
                requires_python=requires_python, extra_headers=extra_headers))
        for member, data in sorted((files or {}).items()):
            _add_bytes(tf, f"{top}/{member}", data)
        if hostile == "bomb":
            info = tarfile.TarInfo(f"{top}/src/bomb.c")
            info.size = bomb_size
            info.mode = 0o644
            tf.addfile(info, io.BufferedReader(_Zeros(bomb_size), buffer_size=1 << 20))
        elif hostile == "traversal":
            _add_bytes(tf, "../../evil.c", b"/* escaped the extraction directory */\n")
            _add_bytes(tf, "/tmp/gilaudit-evil.c", b"/* an absolute member */\n")
            link = tarfile.TarInfo(f"{top}/etc")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc"
            tf.addfile(link)
    return path


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tf.addfile(info)


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1577836800
    tf.addfile(info, io.BytesIO(data))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a directory until interrupted: ``python tests/dashboard_index_server.py ROOT``
    (for a benchmark or a look by hand). Prints the index URL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--format", choices=("negotiate", "html", "json"), default="negotiate")
    args = parser.parse_args(argv)
    with IndexServer(args.root, format=args.format) as server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
