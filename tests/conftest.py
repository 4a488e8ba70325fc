"""Shared fixtures: private data and work directories, tiny IMDB-shaped archives, and a loopback HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
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
    """Every test gets its own empty data directory (and work directory), and the small expected counts."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv(data.DATA_DIR_ENV, str(folder))
    monkeypatch.setenv(data.WORK_DIR_ENV, str(tmp_path / "work"))
    monkeypatch.setattr(data, "EXPECTED_COUNTS", dict(SMALL_COUNTS))
    monkeypatch.setattr(data, "VALIDATION_SIZE", 2)
    monkeypatch.setattr(data, "TEST_SUBSET_SIZE", 4)
    monkeypatch.setattr(data, "_REPO_ROOT", tmp_path / "repo")  # keep the real repo's data/ out of reach
    return folder


@pytest.fixture
def isolated_work_dir(isolated_data_dir: Path) -> Path:
    """The test's own work directory (where outputs go), separate from its data directory."""
    return isolated_data_dir.parent / "work"


@pytest.fixture(autouse=True)
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Download retries do not wait; the list records each wait the download asked for, in seconds."""
    waits: list[float] = []
    monkeypatch.setattr(data, "_sleep", waits.append)
    return waits


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
    """A loopback HTTP server whose routes map a path to (status, body, options).

    Options: ``length`` (announced Content-Length, to fake a short body), ``delay`` (seconds before answering,
    for the first ``delay_hits`` requests), ``ranges`` (honour ``Range: bytes=N-`` with 206 and Content-Range),
    ``fail`` (a list of (status, headers) answered to the first requests), ``drop`` (a list: on the n-th request
    that gets the body, send only that many bytes of it and close the connection; None sends it all), ``hangup``
    (close the connection without an answer on the first that many requests).
    """

    base: str
    routes: dict[str, tuple[int, bytes, dict]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    ranges: list[str | None] = field(default_factory=list)  # the Range header of every request, in order

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture
def http_server() -> Iterator[Server]:
    """Serve routes on 127.0.0.1 from a thread; supports short bodies, slow answers, Range, failures and drops."""
    server_state = Server(base="")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, headers: dict[str, str], body: bytes, send: int | None = None) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                self.wfile.write(body if send is None else body[:send])
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            hit = server_state.hits[self.path] = server_state.hits.get(self.path, 0) + 1
            server_state.ranges.append(self.headers.get("Range"))
            status, body, opts = server_state.routes.get(self.path, (404, b"not found", {}))
            if opts.get("delay") and hit <= opts.get("delay_hits", 1_000_000):
                time.sleep(opts["delay"])
            if hit <= opts.get("hangup", 0):  # close the connection without a word: the client sees a reset
                self.close_connection = True
                return
            fails = opts.get("fail", [])
            if 0 < hit - opts.get("hangup", 0) <= len(fails):
                code, headers = fails[hit - opts.get("hangup", 0) - 1]
                self._answer(code, {**headers, "Content-Length": "4"}, b"oops")
                return
            headers: dict[str, str] = {}
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            start = 0
            if status == 200 and opts.get("ranges") and match:
                start = int(match.group(1))
                if start >= len(body):
                    self._answer(416, {"Content-Range": f"bytes */{len(body)}", "Content-Length": "0"}, b"")
                    return
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            payload = body[start:]
            headers["Content-Length"] = str(opts.get("length", len(payload)))
            drops = opts.get("drop", [])
            served = hit - len(fails) - opts.get("hangup", 0)
            self._answer(status, headers, payload, drops[served - 1] if served <= len(drops) else None)

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


def save_tiny_bert(folder: Path, layers: int = 3) -> Path:
    """A ``layers``-layer BertModel (hidden size 32, vocabulary 128) saved in ``folder`` like the bundled checkpoint:
    a BERT without a classifier. Seeded, so every call writes the same weights."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a 3-layer tiny BERT checkpoint (``save_tiny_bert``), shared by the tests of one session."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def tiny_raw(n: int = 40, n_unsup: int = 10) -> dict:
    """What ``helpers.data.load_raw`` returns, for ``n`` reviews per half and ``n_unsup`` unlabelled ones (no files)."""
    import numpy as np

    return {"train_texts": [f"review {i}" for i in range(n)], "train_labels": np.arange(n, dtype=np.int8) % 2,
            "train_movies": np.arange(n, dtype=np.int64), "test_texts": [f"test {i}" for i in range(n)],
            "test_labels": np.arange(n, dtype=np.int8) % 2, "test_movies": np.arange(n, dtype=np.int64),
            "unsup_texts": [f"unsup {i}" for i in range(n_unsup)]}


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models: one thread is fastest, and safe on a busy machine (two threads spin against each other there)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
