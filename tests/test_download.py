"""helpers.data.download on a bad network: retries, resume with Range, restarts, leftovers, a full disk."""

from __future__ import annotations

import errno
import threading
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import Server, sha256

import helpers.data as data
from helpers.data import DatasetError

PAYLOAD = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()


def _get(server: Server, dest: Path, payload: bytes = PAYLOAD, size: bool = True, **kwargs: object) -> Path:
    return data.download(server.url("/f"), dest, sha256(payload), len(payload) if size else None, **kwargs)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


@pytest.fixture
def dest(isolated_data_dir: Path) -> Path:
    """Where the tests download to."""
    return isolated_data_dir / "a.tar.gz"


# --- retries -------------------------------------------------------------------------------------------------

def test_503_twice_then_success_waits_with_backoff(http_server: Server, dest: Path, retry_waits: list[float]) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"fail": [(503, {}), (503, {})]})
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert http_server.hits["/f"] == 3 and retry_waits == list(data.RETRY_DELAYS[:2])
    assert _files(dest.parent) == ["a.tar.gz"]


@pytest.mark.parametrize(("header", "wait"), [("7", 7.0), ("3600", data.MAX_RETRY_AFTER), ("soon", data.RETRY_DELAYS[0])])
def test_429_honours_retry_after_capped(http_server: Server, dest: Path, retry_waits: list[float], header: str,
                                        wait: float) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"fail": [(429, {"Retry-After": header})]})
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert retry_waits == [wait]  # an unreadable Retry-After falls back to the usual backoff


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= data.retry_after_seconds(format_datetime(later, usegmt=True)) <= 30
    assert data.retry_after_seconds(format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)) == 0
    assert data.retry_after_seconds(None) is None and data.retry_after_seconds("-5") == 0


def test_retries_exhausted_says_so_and_what_to_do(http_server: Server, dest: Path, retry_waits: list[float]) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"fail": [(503, {})] * 10})
    with pytest.raises(DatasetError, match=r"HTTP 503 .*Gave up after 3 attempts.*try again later.*put the file"):
        _get(http_server, dest, retries=2)
    assert http_server.hits["/f"] == 3 and len(retry_waits) == 2 and _files(dest.parent) == []


def test_timeout_then_success(http_server: Server, dest: Path) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"delay": 2, "delay_hits": 1})
    assert _get(http_server, dest, timeout=0.5).read_bytes() == PAYLOAD
    assert http_server.hits["/f"] == 2


def test_connection_reset_then_success(http_server: Server, dest: Path) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"hangup": 2})
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert http_server.hits["/f"] == 3


# --- resume --------------------------------------------------------------------------------------------------

def test_resume_after_a_drop_with_range(http_server: Server, dest: Path, retry_waits: list[float]) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True, "drop": [100_000, 50_000]})
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert http_server.ranges == [None, "bytes=100000-", "bytes=150000-"]  # each try continues where the last stopped
    assert _files(dest.parent) == ["a.tar.gz"]


def test_drops_that_make_progress_do_not_use_up_the_retries(http_server: Server, dest: Path) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True, "drop": [30_000] * 9})
    assert _get(http_server, dest, retries=1).read_bytes() == PAYLOAD
    assert http_server.hits["/f"] == 10


def test_server_without_range_restarts_from_zero(http_server: Server, dest: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"drop": [100_000]})  # answers 200 with the whole body to a Range
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert http_server.ranges == [None, "bytes=100000-"]
    assert "does not resume downloads" in capsys.readouterr().out


@pytest.mark.parametrize("size", [True, False])
def test_killed_download_leftover_is_resumed(http_server: Server, dest: Path, size: bool) -> None:
    dest.with_name("a.tar.gz.part").write_bytes(PAYLOAD[:123_456])  # what a killed run left
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True})
    assert _get(http_server, dest, size=size).read_bytes() == PAYLOAD
    assert http_server.ranges == ["bytes=123456-"] and _files(dest.parent) == ["a.tar.gz"]


def test_killed_download_with_the_whole_file_is_only_checked(http_server: Server, dest: Path) -> None:
    dest.with_name("a.tar.gz.part").write_bytes(PAYLOAD)  # killed between the last byte and the final move
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert http_server.hits == {}


def test_whole_leftover_of_unknown_size_gets_416_and_restarts(http_server: Server, dest: Path) -> None:
    dest.with_name("a.tar.gz.part").write_bytes(PAYLOAD)
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True})
    assert _get(http_server, dest, size=False).read_bytes() == PAYLOAD
    assert http_server.ranges == [f"bytes={len(PAYLOAD)}-", None]


def test_bad_leftover_fails_the_checksum_and_restarts_once(http_server: Server, dest: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    dest.with_name("a.tar.gz.part").write_bytes(b"\0" * 1000)  # not a prefix of the real file
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True})
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert http_server.ranges == ["bytes=1000-", None]
    assert "downloading it again from the start" in capsys.readouterr().out


def test_restart_happens_only_once(http_server: Server, dest: Path) -> None:
    dest.with_name("a.tar.gz.part").write_bytes(PAYLOAD[:1000])
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True})
    with pytest.raises(DatasetError, match="Checksum mismatch.*removed"):
        data.download(http_server.url("/f"), dest, "0" * 64, len(PAYLOAD))  # the server's file has changed
    assert http_server.ranges == ["bytes=1000-", None] and _files(dest.parent) == []


def test_no_second_try_when_the_bad_file_came_in_one_piece(http_server: Server, dest: Path) -> None:
    dest.with_name("a.tar.gz.part").write_bytes(PAYLOAD[:1000])
    http_server.routes["/f"] = (200, PAYLOAD, {})  # ignores Range: the whole body comes in one response
    with pytest.raises(DatasetError, match="Checksum mismatch"):
        data.download(http_server.url("/f"), dest, "0" * 64, len(PAYLOAD))
    assert http_server.hits["/f"] == 1 and _files(dest.parent) == []


def test_drop_with_unknown_size_resumes_from_content_length(http_server: Server, dest: Path) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True, "drop": [70_000]})
    assert _get(http_server, dest, size=False).read_bytes() == PAYLOAD
    assert http_server.ranges == [None, "bytes=70000-"]


def test_leftover_longer_than_the_file_is_discarded(http_server: Server, dest: Path) -> None:
    dest.with_name("a.tar.gz.part").write_bytes(PAYLOAD + b"junk")
    http_server.routes["/f"] = (200, PAYLOAD, {"ranges": True})
    assert _get(http_server, dest).read_bytes() == PAYLOAD
    assert http_server.ranges == [None]


def test_old_random_part_files_are_cleaned(http_server: Server, dest: Path) -> None:
    for name in ("a.tar.gz.x1y2z3.part", "a.tar.gz.qwerty.part"):  # what older versions left behind
        dest.with_name(name).write_bytes(b"old")
    (dest.parent / "unrelated.part").write_bytes(b"keep me")
    http_server.routes["/f"] = (200, PAYLOAD, {})
    _get(http_server, dest)
    assert _files(dest.parent) == ["a.tar.gz", "unrelated.part"]


def test_two_downloads_at_once_fetch_once(http_server: Server, dest: Path) -> None:
    http_server.routes["/f"] = (200, PAYLOAD, {"delay": 0.5})
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            _get(http_server, dest)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and dest.read_bytes() == PAYLOAD and http_server.hits["/f"] == 1


# --- a full disk ---------------------------------------------------------------------------------------------

def test_too_little_free_space_is_reported_before_downloading(http_server: Server, dest: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(data.shutil, "disk_usage", lambda folder: usage(10**9, 10**9 - 1000, 1000))
    http_server.routes["/f"] = (200, PAYLOAD, {})
    with pytest.raises(DatasetError, match=rf"Not enough disk space in {dest.parent} for the download of a\.tar\.gz: "
                                           r"it needs about 0\.30 MB and 0\.00 MB are free.*DLNLP_DATA_DIR"):
        _get(http_server, dest)
    assert http_server.hits == {}


def test_disk_full_while_writing_says_how_much_and_where(http_server: Server, dest: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    class FullDisk:
        def __init__(self, fh):
            self.fh, self.written = fh, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, block: bytes) -> int:
            if self.written:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(block)
            return self.fh.write(block)

    def open_(path: Path, mode: str = "r", *args: object, **kwargs: object):
        fh = real_open(path, mode, *args, **kwargs)
        return FullDisk(fh) if path.name.endswith(".part") and mode in ("wb", "ab") else fh

    monkeypatch.setattr(Path, "open", open_)
    http_server.routes["/f"] = (200, PAYLOAD * 8, {"ranges": True})  # 2.4 MB: more than one block
    with pytest.raises(DatasetError, match=rf"Not enough disk space in {dest.parent} for the rest of a\.tar\.gz\.part: "
                                           r"it needs about 1\.4 MB and [\d,.]+ MB are free"):
        _get(http_server, dest, payload=PAYLOAD * 8)
    assert not dest.exists() and http_server.hits["/f"] == 1  # a full disk is not retried
    monkeypatch.setattr(Path, "open", real_open)  # space freed: the next run resumes from the kept partial file
    assert _get(http_server, dest, payload=PAYLOAD * 8).read_bytes() == PAYLOAD * 8
    assert http_server.ranges[-1] == f"bytes={1 << 20}-"


@pytest.mark.parametrize("ranges", [False, True])
def test_a_file_of_another_size_on_the_server_fails_at_once(http_server: Server, dest: Path, ranges: bool) -> None:
    if ranges:
        dest.with_name("a.tar.gz.part").write_bytes(PAYLOAD[:1000])
    http_server.routes["/f"] = (200, PAYLOAD[:-10], {"ranges": ranges})  # e.g. a mirror with a repacked archive
    with pytest.raises(DatasetError, match=rf"incomplete or the wrong file: the server offers {len(PAYLOAD) - 10:,} "
                                           rf"bytes, expected {len(PAYLOAD):,}"):
        _get(http_server, dest)
    assert http_server.hits["/f"] == 1 and _files(dest.parent) == []  # not retried, nothing kept
