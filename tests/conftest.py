"""Shared fixtures: a private data directory, tiny IMDB-shaped archives, and a loopback HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import helpers.data as data

SMALL_COUNTS = {"train/pos": 3, "train/neg": 3, "test/pos": 4, "test/neg": 4, "train/unsup": 2}


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty data directory and the small expected counts."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv(data.DATA_DIR_ENV, str(folder))
    monkeypatch.setattr(data, "EXPECTED_COUNTS", dict(SMALL_COUNTS))
    monkeypatch.setattr(data, "VALIDATION_SIZE", 2)
    monkeypatch.setattr(data, "TEST_SUBSET_SIZE", 4)
    monkeypatch.setattr(data, "_REPO_ROOT", tmp_path / "repo")  # keep the real repo's data/ out of reach
    return folder


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def movie_of(sub: str, i: int, reviews_per_movie: int = 1) -> int:
    """The IMDb movie number that ``make_archive`` gives review ``i`` of folder ``sub`` (e.g. ``train/pos``)."""
    return 1_000 * (1 + list(SMALL_COUNTS).index(sub)) + i // reviews_per_movie


def make_archive(counts: dict[str, int] | None = None, extra: list[tarfile.TarInfo] | None = None,
                 reviews_per_movie: int = 1, urls: bool = True) -> bytes:
    """A gzipped tar with the aclImdb layout, ``counts`` reviews per folder and their urls files, plus raw members."""
    counts = SMALL_COUNTS if counts is None else counts
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        _add(tar, "aclImdb/README", b"tiny test copy")
        for sub, n in counts.items():
            rating = {"pos": 8, "neg": 2, "unsup": 0}[sub.split("/")[1]]
            for i in range(n):
                text = f"{sub} review {i}<br /><br />It was &quot;fine&quot;."
                _add(tar, f"aclImdb/{sub}/{i}_{rating}.txt", text.encode())
            if urls:  # line i: the IMDb page of the movie that review i is about, as in the official release
                split, label = sub.split("/")
                pages = "".join(f"http://www.imdb.com/title/tt{movie_of(sub, i, reviews_per_movie):07d}/usercomments\n"
                                for i in range(n))
                _add(tar, f"aclImdb/{split}/urls_{label}.txt", pages.encode())
        for member in extra or []:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buf.getvalue()


@dataclass
class Server:
    """A loopback HTTP server whose routes map a path to (status, body, options)."""

    base: str
    routes: dict[str, tuple[int, bytes, dict]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture
def http_server() -> Iterator[Server]:
    """Serve routes on 127.0.0.1 from a thread; supports truncated bodies and slow answers."""
    server_state = Server(base="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            server_state.hits[self.path] = server_state.hits.get(self.path, 0) + 1
            status, body, opts = server_state.routes.get(self.path, (404, b"not found", {}))
            if opts.get("delay"):
                time.sleep(opts["delay"])
            self.send_response(status)
            self.send_header("Content-Length", str(opts.get("length", len(body))))
            self.end_headers()
            try:
                self.wfile.write(body)
                self.wfile.flush()
            except OSError:
                pass
            if opts.get("length", len(body)) != len(body):
                self.close_connection = True

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL on a port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/aclImdb_v1.tar.gz"


def sha256(payload: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(payload).hexdigest()
