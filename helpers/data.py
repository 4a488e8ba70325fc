"""IMDB Large Movie Review Dataset (Maas et al. 2011): find, download, parse, cache and split.

Where the data comes from, in order: the parsed cache, an extracted ``aclImdb/`` folder, an
``aclImdb_v1.tar.gz`` archive (read in place, never extracted), and finally a download from the official URL
that retries, resumes and is verified. Two folders, one rule:

- ``data_dir()`` (``$DLNLP_DATA_DIR``, else the clone's ``data/``) holds the dataset: archive, ``aclImdb/``
  folder and parsed cache. It may be shared by a whole room and read-only; the dataset is read from it first.
- ``work_dir()`` (``$DLNLP_WORK_DIR``, else the clone's ``data/``) is this learner's own folder. Every output
  goes there (``results.json``, ``vectors/``, ``models/``, ``projector/``), and outputs are only read from there.

When the dataset has to be built (downloaded, parsed, cached), it is written to ``data_dir()`` if that is
writable (a teacher running ``python -m helpers prefetch``) and otherwise to ``work_dir()``. Nothing loaded from
either folder can run code: the cache is NumPy arrays read with ``allow_pickle=False``, never a pickle.
"""

from __future__ import annotations

import codecs
import email.utils
import errno
import glob
import hashlib
import html
import http.client
import os
import re
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from . import validate as check

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_SIZE = 84_125_825
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
FOLDER_NAME = "aclImdb"
CACHE_NAME = "imdb-cache-v4.npz"
# 4: clean_text removes HTML tags only (text such as "< Cough , cough >" stays), and the validation split is the
# NumPy one of whole_movie_indices (no longer scikit-learn's, whose assignment changed between versions);
# 3: NumPy arrays (texts as UTF-8 bytes + offsets), read with allow_pickle=False; 2 was a pickle (never read now);
# 2 added each labelled review's IMDb movie (from urls_*.txt), for the whole-movie validation split.
CACHE_FORMAT = 4
CACHE_KIND = "dlnlp-imdb"
DATA_DIR_ENV = "DLNLP_DATA_DIR"
WORK_DIR_ENV = "DLNLP_WORK_DIR"
# Disk space the steps need, for the "not enough space" messages (measured on the official release).
EXTRACTED_SIZE = 500_000_000  # an extracted aclImdb/ on disk (100,000 small files), for extract(); loading never extracts
CACHE_SIZE = 140_000_000
# Reviews per folder in the official release; the structural checks of a folder or an archive use these.
EXPECTED_COUNTS = {"train/pos": 12_500, "train/neg": 12_500, "test/pos": 12_500, "test/neg": 12_500,
                   "train/unsup": 50_000}
VALIDATION_SIZE = 2_500  # about this many, taken from train as whole movies, stratified, same for every notebook
TEST_SUBSET_SIZE = 2_000  # the series comparison subset of test, stratified, same for every notebook
SPLIT_SEED = 20110619  # fixed: the validation split and the test subset never depend on a notebook's seed
# Download retries: the waits (seconds) before retry 1, 2, ...; a failure that brought new bytes is free.
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)
MAX_RETRY_AFTER = 60.0  # a server's Retry-After is honoured up to this many seconds
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ATTEMPTS = 200  # hard stop, even while every attempt makes progress

_REPO_ROOT = Path(__file__).resolve().parents[1]
_MANUAL_HINT = (
    "To supply the dataset by hand, download {url} on any machine with internet, then put the file "
    "(or its extracted aclImdb/ folder) into {folder}, or set {env} to a folder that holds it."
)
_sleep = time.sleep  # the tests replace it, so retries take no time


class DatasetError(RuntimeError):
    """A problem with the IMDB data whose message says what to do about it."""


@dataclass(frozen=True)
class Split:
    """Review texts, their 0/1 labels (1 = positive) and, for labelled reviews, the IMDb movie of each review."""

    texts: list[str]
    labels: np.ndarray
    movies: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Imdb:
    """The IMDB splits the series uses: train (minus validation), val, test, test_subset and unsup."""

    train: Split
    val: Split
    test: Split
    test_subset: Split
    unsup: list[str]


def _default_dir() -> Path:
    if (_REPO_ROOT / "pyproject.toml").exists() and (_REPO_ROOT / "helpers").is_dir():
        return _REPO_ROOT / "data"
    return Path.cwd() / "data"


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def data_dir() -> Path:
    """The dataset folder (only read; may be shared): ``$DLNLP_DATA_DIR`` when set, else the clone's ``data/``."""
    return _env_dir(DATA_DIR_ENV) or _default_dir()


def _is_writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def work_dir() -> Path:
    """This learner's own folder, where every output goes: ``$DLNLP_WORK_DIR`` when set, else the clone's ``data/``."""
    folder = _env_dir(WORK_DIR_ENV) or _default_dir()
    if not _is_writable(folder):
        raise DatasetError(
            f"The work directory {folder} is not writable. Set {WORK_DIR_ENV} to a folder of your own that you can "
            f"write to: your results, vectors and models go there ({DATA_DIR_ENV} may stay a shared, read-only "
            "dataset folder)."
        )
    return folder


def build_dir() -> Path:
    """Where a missing dataset is downloaded and cached: ``data_dir()`` if writable, else ``work_dir()``."""
    shared = data_dir()
    return shared if _is_writable(shared) else work_dir()


# The HTML that IMDB reviews contain (<br />, <i>, <p>, <em>, <b>, <hr>) and other common inline tags. Anything else
# between "<" and ">" is the reviewer's own text ("< Cough , cough >", "<grin>", "5 < 10 and 10 > 5") and stays.
_HTML_TAG = re.compile(r"</?(?:a|b|big|blockquote|br|center|code|div|em|font|h[1-6]|hr|i|li|ol|p|pre|s|small|span|"
                       r"strike|strong|sub|sup|tt|u|ul)(?:\s[^<>]{0,200})?/?>", re.IGNORECASE)


def clean_text(text: str) -> str:
    """Turn a raw review into plain text: HTML tags such as ``<br />`` become spaces, entities are decoded."""
    if not isinstance(text, str):
        raise TypeError(f"clean_text(text=...) takes one review as a str; got {type(text).__name__}. "
                        "For a list of reviews, use [clean_text(t) for t in texts].")
    text = _HTML_TAG.sub(" ", text)
    text = html.unescape(text)
    return re.sub(r"\s+", " ", text).strip()


def publish(tmp: Path | str, dest: Path) -> None:
    """Give a finished temporary file the usual permissions (readable by others per umask) and move it to ``dest``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dest)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _megabytes(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e7 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e6:.2f} MB"


def is_disk_full(err: BaseException) -> bool:
    """Whether an error is a full disk or an exhausted quota (ENOSPC, EDQUOT)."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def disk_full_error(folder: Path, needed: int | None, what: str) -> DatasetError:
    """The ``DatasetError`` for a disk too full for ``what``: how much space it needs, how much is free, where."""
    try:
        free = f"{_megabytes(shutil.disk_usage(folder).free)} are free"
    except OSError:
        free = "the free space is unknown"
    need = f"about {_megabytes(needed)}" if needed else "more space"
    return DatasetError(
        f"Not enough disk space in {folder} for {what}: it needs {need} and {free}. Free some space there, or set "
        f"{DATA_DIR_ENV} (the dataset) or {WORK_DIR_ENV} (your outputs) to a folder on a disk with room, then run again."
    )


def write_npz(path: Path, arrays: dict[str, np.ndarray], what: str = "a cache file") -> None:
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz`` atomically (temp file, then ``publish``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        publish(tmp, path)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(path.parent, sum(a.nbytes for a in arrays.values()), what) from err
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def pack_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as one UTF-8 byte array and int64 offsets (``len(texts) + 1``): a layout that needs no pickle."""
    encoded = [text.encode("utf-8") for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def unpack_texts(buffer: np.ndarray, offsets: np.ndarray) -> list[str]:
    """The strings ``pack_texts`` packed; ``ValueError`` when the offsets do not fit the buffer."""
    return _Packed(buffer, offsets).take()


_UTF8_BLOCK = 1 << 22  # bytes decoded at a time when a whole buffer is checked, so the check holds little memory


class _Packed:
    """Texts as ``pack_texts`` stores them (one UTF-8 buffer and offsets); only the texts taken become ``str``.

    ``load_imdb`` keeps the cache's texts in this form and decodes just the reviews its splits return: decoding all
    100,000 reviews and dropping most of them would leave the freed memory scattered in the process for good.
    """

    def __init__(self, buffer: np.ndarray | None, offsets: np.ndarray, check_utf8: bool = False) -> None:
        offsets = np.asarray(offsets)
        self.buffer = None if buffer is None else np.ascontiguousarray(buffer, dtype=np.uint8).reshape(-1)
        if (offsets.ndim != 1 or len(offsets) == 0 or not np.issubdtype(offsets.dtype, np.integer) or offsets[0] != 0
                or (self.buffer is not None and offsets[-1] != len(self.buffer)) or np.any(np.diff(offsets) < 0)):
            raise ValueError("the text offsets do not match the text buffer")
        self.offsets = offsets.astype(np.int64, copy=False)
        if check_utf8 and self.buffer is not None:
            self._check_utf8()

    def _check_utf8(self) -> None:
        """Raise ``UnicodeDecodeError`` unless every text decodes: the buffer is UTF-8 and each text starts a character."""
        decoder, view = codecs.getincrementaldecoder("utf-8")(), memoryview(self.buffer)
        for start in range(0, len(view), _UTF8_BLOCK):
            decoder.decode(view[start:start + _UTF8_BLOCK])
        decoder.decode(b"", final=True)
        starts = self.offsets[:-1][self.offsets[:-1] < len(self.buffer)]
        if len(starts) and np.any(self.buffer[starts] & 0xC0 == 0x80):  # a UTF-8 continuation byte
            at = int(starts[np.argmax(self.buffer[starts] & 0xC0 == 0x80)])
            raise UnicodeDecodeError("utf-8", bytes(self.buffer[at:at + 1]), 0, 1, "a text starts inside a character")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def take(self, idx: np.ndarray | None = None) -> list[str]:
        """The texts at ``idx`` (all of them when ``None``), decoded, in the order of ``idx``."""
        if idx is None:
            starts, ends = self.offsets[:-1], self.offsets[1:]
        else:
            idx = np.asarray(idx, dtype=np.int64)
            starts, ends = self.offsets[idx], self.offsets[idx + 1]
        if self.buffer is None:
            if len(starts):
                raise RuntimeError("these texts were not read from the cache")
            return []
        view = memoryview(self.buffer)
        return [str(view[a:b], "utf-8") for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _pick(texts: Sequence[str] | _Packed, idx: np.ndarray) -> list[str]:
    """The texts at ``idx``, in that order, from a list or from packed texts."""
    return texts.take(idx) if isinstance(texts, _Packed) else [texts[i] for i in idx]


# --- download ------------------------------------------------------------------------------------------------

class _Retry(Exception):
    """A failure worth another try; ``wait`` is the server's Retry-After (capped), if it gave one."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


def retry_after_seconds(value: str | None, cap: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), capped at ``MAX_RETRY_AFTER``."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER if cap is None else cap)


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if not match:
        return None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _is_timeout(err: BaseException) -> bool:
    return isinstance(err, TimeoutError) or isinstance(getattr(err, "reason", None), TimeoutError)


def _fetch(url: str, part: Path, size: int | None, timeout: float, hint: str, state: dict) -> None:
    """One request: append to ``part`` from its length when the server honours Range, else rewrite it from byte 0."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    state["mode"] = None  # becomes "ab" (appending to the partial file) or "wb" (writing it afresh)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - the caller gives an https URL
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send from there: the partial file is not a prefix of this file
            part.unlink(missing_ok=True)
            raise _Retry(f"The server refused to resume {part.name} (HTTP 416)", wait=0.0) from err
        if err.code in RETRY_STATUSES:
            raise _Retry(f"The server answered HTTP {err.code} ({err.reason}) for {url}",
                         wait=retry_after_seconds(err.headers.get("Retry-After") if err.headers else None)) from err
        raise DatasetError(f"The server answered HTTP {err.code} ({err.reason}) for {url}. {hint}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        if _is_timeout(err):
            raise _Retry(f"The download of {url} timed out after {timeout:g} s without data") from err
        if isinstance(reason, ConnectionRefusedError | socket.gaierror) or not isinstance(
                reason, ConnectionError | http.client.HTTPException):
            raise DatasetError(
                f"Could not download {url} ({reason}). You may be offline or behind a firewall. {hint}") from err
        raise _Retry(f"The connection to {url} was reset ({reason})") from err
    with response:
        announced = response.headers.get("Content-Length")
        offsets = _content_range(response.headers.get("Content-Range")) if response.status == 206 else None
        if offsets is not None:  # the whole file's size, as the server tells it
            offered = offsets[1]
        else:
            offered = int(announced) if response.status == 200 and (announced or "").isdigit() else None
        if size is not None and offered is not None and offered != size:
            part.unlink(missing_ok=True)
            raise DatasetError(
                f"The download of {url} is incomplete or the wrong file: the server offers {offered:,} bytes, "
                f"expected {size:,}. Nothing was kept; try again later, or supply the file by hand. {hint}"
            )
        if have and response.status == 206:
            if offsets is None or offsets[0] != have:
                part.unlink(missing_ok=True)  # not the continuation of our partial file: start afresh
                raise _Retry(f"The server resumed {url} at an unexpected place ({response.headers.get('Content-Range')})",
                             wait=0.0)
            mode = "ab"
        else:
            if have:
                print(f"The server does not resume downloads (it answered HTTP {response.status} to a Range request); "
                      f"starting {part.name} again from the beginning.")
            have, mode = 0, "wb"
        expected = size if size is not None else (have + int(announced) if announced and announced.isdigit() else None)
        received = have
        state["mode"] = mode
        try:
            with part.open(mode) as out, tqdm(total=expected, initial=have, unit="B", unit_scale=True,
                                                 desc=f"Downloading {part.name.removesuffix('.part')}") as bar:
                while True:
                    try:
                        block = response.read(1 << 20)
                    except (OSError, http.client.HTTPException) as err:
                        if _is_timeout(err):
                            raise _Retry(f"The download of {url} timed out after {timeout:g} s without data, "
                                         f"at {received:,} bytes") from err
                        raise _Retry(f"The download of {url} broke off at {received:,} bytes ({err})") from err
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
        except OSError as err:
            if is_disk_full(err):
                needed = expected - received if expected else None
                raise disk_full_error(part.parent, needed or None, f"the rest of {part.name}") from err
            raise
        if expected is not None and received < expected:
            raise _Retry(f"The download of {url} broke off at {received:,} of {expected:,} bytes")


def _clean_stale_parts(dest: Path) -> None:
    """Remove the randomly named ``<dest>.XXXX.part`` files older versions left behind."""
    for old in dest.parent.glob(glob.escape(dest.name) + ".*.part"):
        old.unlink(missing_ok=True)


def download(url: str, dest: Path, sha256: str, size: int | None = None, timeout: float = 30.0,
             retries: int | None = None) -> Path:
    """Download ``url`` to ``dest`` through ``<dest>.part``: retry, resume with Range, verify SHA-256, move into place.

    Timeouts, resets, dropped connections, 5xx and 429 are retried after ``RETRY_DELAYS`` (or the server's
    ``Retry-After``, capped at ``MAX_RETRY_AFTER``); a failure that brought new bytes does not count against
    ``retries`` (default: one per delay). The partial file keeps its fixed name, so a run that was stopped is resumed
    by the next one. A whole file that fails its checksum after a resume is deleted and downloaded once more from
    byte 0. A lock beside ``dest`` keeps two processes from writing the same partial file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    retries = len(RETRY_DELAYS) if retries is None else retries
    hint = _MANUAL_HINT.format(url=url, folder=dest.parent, env=DATA_DIR_ENV)
    part = dest.with_name(dest.name + ".part")
    with FileLock(dest.with_name(dest.name + ".lock")):
        _clean_stale_parts(dest)
        if dest.exists() and (size is None or dest.stat().st_size == size) and sha256_of(dest) == sha256:
            return dest  # another process finished it while we waited for the lock
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
        if have:
            print(f"Resuming the download of {dest.name} from {part} ({_megabytes(have)} already there).")
        if size is not None and shutil.disk_usage(dest.parent).free < size - have:
            raise disk_full_error(dest.parent, size - have, f"the download of {dest.name}")

        def kept() -> str:
            if not part.exists() or not part.stat().st_size:
                return ""
            return f" The {_megabytes(part.stat().st_size)} received so far are kept in {part}; running again resumes."

        start, failures, attempts, restarted = time.monotonic(), 0, 0, False
        mixed = have > 0  # the partial file holds bytes of more than one response: a bad result gets one fresh try
        state: dict = {}
        while True:
            whole = size is not None and part.exists() and part.stat().st_size == size
            if not whole:  # a run stopped just before the final move left the whole file: only check it
                attempts += 1
                before = part.stat().st_size if part.exists() else 0
                try:
                    _fetch(url, part, size, timeout, hint, state)
                except _Retry as err:
                    mixed = {"ab": True, "wb": False}.get(state["mode"], mixed)
                    progressed = state["mode"] == "ab" or (state["mode"] == "wb" and before == 0)
                    progressed = progressed and part.exists() and part.stat().st_size > before
                    failures += 0 if progressed else 1
                    if failures > retries or attempts >= MAX_ATTEMPTS:
                        raise DatasetError(
                            f"{err}. Gave up after {attempts} attempts in {time.monotonic() - start:.0f} s: the "
                            f"server or the network is unreliable right now; try again later.{kept()} {hint}"
                        ) from err
                    wait = err.wait if err.wait is not None else RETRY_DELAYS[min(max(failures, 1), len(RETRY_DELAYS)) - 1]
                    print(f"{err}; trying again in {wait:g} s (attempt {attempts + 1}).")
                    _sleep(wait)
                    continue
                mixed = {"ab": True, "wb": False}.get(state["mode"], mixed)
            got = part.stat().st_size if part.exists() else 0
            digest = sha256_of(part) if part.exists() else ""
            if (size is None or got == size) and digest == sha256:
                publish(part, dest)
                return dest
            part.unlink(missing_ok=True)
            if mixed and not restarted:
                print(f"The resumed download of {dest.name} does not check out; downloading it again from the start.")
                restarted, mixed = True, False
                continue
            if size is not None and got != size:
                raise DatasetError(
                    f"The download of {url} is incomplete or the wrong file: got {got:,} bytes, expected {size:,}. "
                    f"The partial file was removed; try again. {hint}"
                )
            raise DatasetError(
                f"Checksum mismatch for {url}: SHA-256 {digest}, expected {sha256}. The file was removed; try "
                f"again, and if it persists the file on the server has changed. {hint}"
            )


# --- extraction and parsing ------------------------------------------------------------------------------------

def _count_reviews(root: Path) -> dict[str, int]:
    return {sub: sum(1 for _ in (root / sub).glob("*.txt")) if (root / sub).is_dir() else 0
            for sub in EXPECTED_COUNTS}


def _check_counts(counts: dict[str, int], where: Path, fix: str) -> None:
    wrong = {sub: n for sub, n in counts.items() if n != EXPECTED_COUNTS[sub]}
    if wrong:
        details = ", ".join(f"{sub}: {n:,} (expected {EXPECTED_COUNTS[sub]:,})" for sub, n in wrong.items())
        raise DatasetError(f"{where} does not have the layout of the IMDB dataset ({details}). {fix}")


def check_structure(root: Path) -> None:
    """Raise ``DatasetError`` unless ``root`` (an ``aclImdb/`` folder) holds the expected review counts."""
    _check_counts(_count_reviews(root), root, f"Delete it; the tutorial then reads {ARCHIVE_NAME} instead (or downloads "
                  f"a fresh copy from {IMDB_URL}).")


_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python 3.11.4+; older 3.11 releases get _check_members
_UNSAFE = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()


class UnsafeMemberError(tarfile.TarError):
    """An archive member that would land outside the target, link out of it, or is a device."""


def _check_members(tar: tarfile.TarFile, target: Path) -> None:
    """Refuse members that escape ``target`` (absolute, ``..``, links out, devices): the data filter's rules."""
    root = os.path.realpath(target)
    inside = lambda path: path == root or path.startswith(root + os.sep)  # noqa: E731
    for member in tar.getmembers():
        path = os.path.realpath(os.path.join(root, member.name))
        if os.path.isabs(member.name) or not inside(path):
            raise UnsafeMemberError(f"{member.name!r} would be extracted outside the target")
        if member.isdev() or member.isfifo():
            raise UnsafeMemberError(f"{member.name!r} is a device or pipe")
        if member.issym() or member.islnk():
            base = os.path.dirname(path) if member.issym() else root
            if os.path.isabs(member.linkname) or not inside(os.path.realpath(os.path.join(base, member.linkname))):
                raise UnsafeMemberError(f"{member.name!r} links outside the target ({member.linkname!r})")


def extract(archive: Path, target_dir: Path) -> Path:
    """Safely extract ``archive`` into ``target_dir/aclImdb``, atomically, after checking its structure."""
    final = target_dir / FOLDER_NAME
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target_dir))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                if _HAS_DATA_FILTER:
                    tar.extractall(staging, filter="data")
                else:
                    _check_members(tar, staging)
                    tar.extractall(staging)  # noqa: S202 - every member was checked just above
        except (*_UNSAFE, UnsafeMemberError) as err:
            raise DatasetError(
                f"{archive} contains an unsafe member ({err}); nothing was extracted. Delete the file and "
                f"download the official archive from {IMDB_URL}."
            ) from err
        except (tarfile.TarError, EOFError, OSError) as err:
            if is_disk_full(err):
                raise disk_full_error(target_dir, EXTRACTED_SIZE, f"extracting {archive.name}") from err
            raise DatasetError(
                f"{archive} is truncated or corrupt ({err}); nothing was extracted. Delete it and download it "
                f"again from {IMDB_URL}."
            ) from err
        root = staging / FOLDER_NAME
        if not root.is_dir():
            raise DatasetError(
                f"{archive} has no top-level {FOLDER_NAME}/ folder, so it is not the IMDB archive. Delete it "
                f"and download the official one from {IMDB_URL}."
            )
        check_structure(root)
        os.replace(root, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read_folder(folder: Path) -> list[str]:
    files = sorted(folder.glob("*.txt"), key=lambda p: tuple(int(x) for x in p.stem.split("_")))
    return [clean_text(p.read_text(encoding="utf-8", errors="replace")) for p in files]


def _movies(text: str | None, n: int, where: str, fix: str) -> np.ndarray:
    """IMDb movie number of reviews 0..n-1 from a ``urls_pos.txt``-style text (line i: the page of review i's movie)."""
    if text is None:
        raise DatasetError(f"{where} is missing; it names each review's movie, which the validation split needs. {fix}")
    lines = text.split()
    try:
        movies = np.array([int(re.search(r"/title/tt(\d+)", line).group(1)) for line in lines[:n]], dtype=np.int64)
    except AttributeError as err:
        raise DatasetError(f"{where} is unreadable (a line names no IMDb title); it names each review's movie, which "
                           f"the validation split needs. {fix}") from err
    if len(movies) != n:
        raise DatasetError(f"{where} names {len(movies):,} reviews' movies, expected {n:,}. {fix}")
    return movies


def _assemble(texts: dict[str, list[str]], movies_of: Callable[[str, int], np.ndarray]) -> dict[str, object]:
    out: dict[str, object] = {"format": CACHE_FORMAT}
    for split in ("train", "test"):
        neg, pos = texts[f"{split}/neg"], texts[f"{split}/pos"]
        out[f"{split}_texts"] = neg + pos
        out[f"{split}_labels"] = np.array([0] * len(neg) + [1] * len(pos), dtype=np.int8)
        # review files are named <id>_<rating>.txt with ids 0..n-1, and line id of urls_*.txt is that review's page
        out[f"{split}_movies"] = np.concatenate([movies_of(f"{split}/neg", len(neg)), movies_of(f"{split}/pos", len(pos))])
    out["unsup_texts"] = texts["train/unsup"]
    return out


def parse(root: Path) -> dict[str, object]:
    """Read an ``aclImdb/`` folder into cleaned texts, labels and movies (order: negatives, then positives)."""
    fix = (f"Delete {root} and let the tutorial read the official {ARCHIVE_NAME} instead (or download it from "
           f"{IMDB_URL}).")

    def movies_of(sub: str, n: int) -> np.ndarray:
        split, label = sub.split("/")
        urls = root / split / f"urls_{label}.txt"
        try:
            text = urls.read_text(encoding="utf-8")
        except OSError:
            text = None
        return _movies(text, n, str(urls), fix)

    return _assemble({sub: _read_folder(root / sub) for sub in EXPECTED_COUNTS}, movies_of)


_REVIEW_MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_\d+\.txt")
_URLS_MEMBER = re.compile(r"aclImdb/(train|test)/urls_(pos|neg)\.txt")


def parse_archive(archive: Path) -> dict[str, object]:
    """Read the reviews straight out of ``aclImdb_v1.tar.gz``, as ``parse`` does; nothing is written to disk.

    Only regular files named like reviews and ``urls_*.txt`` are read; every other member (links, devices, paths
    outside ``aclImdb/``) is skipped, so a crafted archive cannot write anywhere. The review counts are checked.
    """
    found: dict[str, list[tuple[int, str]]] = {sub: [] for sub in EXPECTED_COUNTS}
    urls: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if (match := _REVIEW_MEMBER.fullmatch(member.name)) and f"{match[1]}/{match[2]}" in found:
                    text = tar.extractfile(member).read().decode("utf-8", errors="replace")
                    found[f"{match[1]}/{match[2]}"].append((int(match[3]), clean_text(text)))
                elif match := _URLS_MEMBER.fullmatch(member.name):
                    urls[f"{match[1]}/{match[2]}"] = tar.extractfile(member).read().decode("utf-8", errors="replace")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DatasetError(f"{archive} is truncated or corrupt ({err}). Delete it and download it again from "
                           f"{IMDB_URL}.") from err
    fix = f"Delete {archive} and download the official archive from {IMDB_URL}."
    _check_counts({sub: len(reviews) for sub, reviews in found.items()}, archive, fix)
    texts = {sub: [text for _, text in sorted(reviews)] for sub, reviews in found.items()}
    return _assemble(texts, lambda sub, n: _movies(urls.get(sub), n, f"aclImdb/{sub.split('/')[0]}/urls_"
                                                   f"{sub.split('/')[1]}.txt in {archive}", fix))


def write_cache(raw: dict[str, object], path: Path) -> None:
    """Write a parsed dataset (``parse``'s dict) to ``path`` as NumPy arrays, atomically; no pickle involved."""
    arrays: dict[str, np.ndarray] = {"format": np.array(CACHE_FORMAT, dtype=np.int64), "kind": np.array(CACHE_KIND)}
    for split in ("train", "test", "unsup"):
        arrays[f"{split}_text"], arrays[f"{split}_offsets"] = pack_texts(raw[f"{split}_texts"])
    for split in ("train", "test"):
        arrays[f"{split}_labels"] = np.asarray(raw[f"{split}_labels"], dtype=np.int8)
        arrays[f"{split}_movies"] = np.asarray(raw[f"{split}_movies"], dtype=np.int64)
    if "val_index" in raw:  # the fixed validation split, computed once (it takes seconds) with the settings in val_key
        arrays["val_index"] = np.asarray(raw["val_index"], dtype=np.int64)
        arrays["val_key"] = np.asarray(raw["val_key"], dtype=np.int64)
    write_npz(path, arrays, "the parsed dataset cache")


def read_cache(path: Path, note: bool = True) -> dict[str, object] | None:
    """The parsed dataset from a cache file, or ``None`` (with a one-line note) when it is stale, foreign or corrupt."""
    raw = _read_packed(path, note)
    if raw is not None:
        for split in ("train", "test", "unsup"):
            raw[f"{split}_texts"] = raw[f"{split}_texts"].take()
    return raw


def _read_packed(path: Path, note: bool = True, unsup_text: bool = True) -> dict[str, object] | None:
    """``read_cache`` with the texts left packed (``_Packed``), checked so that each of them decodes.

    With ``unsup_text=False`` the unlabelled reviews' bytes are not even read (their count is); none can be taken.
    """
    say = print if note else (lambda *a, **k: None)
    try:
        with np.load(path, allow_pickle=False) as npz:  # a pickle, or an array of objects, is refused here
            if str(npz["kind"]) != CACHE_KIND or int(npz["format"]) != CACHE_FORMAT:
                say(f"Ignoring the cache {path}: it is format {int(npz['format'])} of {str(npz['kind'])!r}, this "
                      f"version reads format {CACHE_FORMAT}; it will be rebuilt from the dataset.")
                return None
            raw: dict[str, object] = {"format": CACHE_FORMAT}
            for split in ("train", "test", "unsup"):
                buffer = npz[f"{split}_text"] if split != "unsup" or unsup_text else None
                raw[f"{split}_texts"] = _Packed(buffer, npz[f"{split}_offsets"], check_utf8=True)
            for split in ("train", "test"):
                labels, movies = npz[f"{split}_labels"], npz[f"{split}_movies"]
                n = len(raw[f"{split}_texts"])
                if labels.shape != (n,) or movies.shape != (n,) or not np.isin(labels, (0, 1)).all():
                    raise ValueError(f"{split} labels or movies do not match its {n:,} texts")
                raw[f"{split}_labels"], raw[f"{split}_movies"] = labels.astype(np.int8), movies.astype(np.int64)
            if "val_index" in npz.files:
                val_index, n = npz["val_index"].astype(np.int64), len(raw["train_texts"])
                if val_index.ndim != 1 or len(np.unique(val_index)) != len(val_index) or np.any(
                        (val_index < 0) | (val_index >= n)):
                    raise ValueError("the validation indices do not fit the training set")
                raw["val_index"], raw["val_key"] = val_index, npz["val_key"].astype(np.int64)
    except Exception as err:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
        say(f"Ignoring the unreadable cache {path} ({type(err).__name__}); it will be rebuilt from the dataset.")
        return None
    return raw


def _folders() -> list[Path]:
    folders = [data_dir()]
    try:
        folders.append(work_dir())
    except DatasetError:
        pass
    return list(dict.fromkeys(folders))


def _find(name: str) -> Path | None:
    for folder in _folders():
        if (folder / name).exists():
            return folder / name
    return None


def _load_cached(notes: bool = True, reader: Callable[[Path, bool], dict[str, object] | None] = read_cache,
                 ) -> dict[str, object] | None:
    """The first valid cache in the data directory, then the work directory; old pickle caches are never opened."""
    for folder in _folders():
        if (folder / CACHE_NAME).is_file() and (raw := reader(folder / CACHE_NAME, notes)) is not None:
            return raw
    if notes:
        for folder in _folders():
            for old in sorted(folder.glob("imdb-cache-*.pkl")):
                print(f"Ignoring the old cache {old}: it is a pickle, which can run code, so it is never opened. "
                      f"Delete it; the dataset is now cached as {CACHE_NAME}.")
    return None


def load_raw(verbose: bool = True) -> dict[str, object]:
    """Return the full parsed dataset; without a cache, build one from the folder or the archive (downloaded if need be)."""
    return _load(verbose, read_cache)


def _raw_for_splits(verbose: bool, n_unsup: int | None) -> dict[str, object]:
    """The dataset as ``load_imdb`` reads it: cached texts stay packed, and unsup is not read when ``n_unsup`` is 0."""
    return _load(verbose, lambda path, note: _read_packed(path, note, unsup_text=n_unsup != 0))


def _load(verbose: bool, reader: Callable[[Path, bool], dict[str, object] | None]) -> dict[str, object]:
    """``load_raw`` with the cache read by ``reader``; a dataset built afresh comes as ``parse`` returns it."""
    say = print if verbose else (lambda *a, **k: None)
    if (raw := _load_cached(reader=reader)) is not None:
        return raw
    target = build_dir()
    lock = FileLock(target / ".imdb-build.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"Another process is preparing the dataset in {target}; waiting for it to finish ...")
        lock.acquire()
    try:
        if (raw := _load_cached(notes=False, reader=reader)) is not None:  # the other process built it meanwhile
            return raw
        start = time.perf_counter()
        root = _find(FOLDER_NAME)
        if root is not None:
            check_structure(root)
            say(f"Parsing {root} ...")
            raw = parse(root)
        else:
            archive = _find(ARCHIVE_NAME)
            if archive is None:
                archive = download(IMDB_URL, target / ARCHIVE_NAME, IMDB_SHA256, IMDB_SIZE)
            elif archive.stat().st_size != IMDB_SIZE or sha256_of(archive) != IMDB_SHA256:
                say(f"Note: {archive} differs from the official release; using it after a structural check.")
            say(f"Reading the reviews from {archive} (nothing is extracted) ...")
            raw = parse_archive(archive)
        raw["val_index"], raw["val_key"] = _validation_indices(raw), _validation_key()
        write_cache(raw, target / CACHE_NAME)
        say(f"Cached the parsed dataset in {target / CACHE_NAME} ({time.perf_counter() - start:.1f} s).")
        return raw
    finally:
        lock.release()


def stable_order(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` that is the same on every NumPy version (PCG64's raw stream, argsorted)."""
    # NumPy guarantees a bit generator's raw stream, not the algorithms of Generator.permutation or .choice.
    return np.argsort(np.random.PCG64(seed).random_raw(n), kind="stable")


def _quotas(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The classes of ``labels`` and how many of ``n`` items each gets, in proportion (largest remainders)."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * n
    quotas = np.floor(exact).astype(int)
    quotas[np.argsort(-(exact - quotas), kind="stable")[: n - quotas.sum()]] += 1
    return classes, quotas


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Pick ``n`` indices with the label proportions of ``labels``, the same for a seed on any NumPy version."""
    labels = np.asarray(labels)
    if not 0 < n <= len(labels):
        raise ValueError(f"Cannot take {n} items from {len(labels)}; choose 1 <= n <= {len(labels)}.")
    order = stable_order(len(labels), seed)
    classes, quotas = _quotas(labels, n)
    picked = [order[labels[order] == c][:q] for c, q in zip(classes, quotas, strict=True)]
    return np.sort(np.concatenate(picked))


def whole_movie_indices(labels: np.ndarray, movies: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` indices made of whole movies (every review of a picked movie), with the label proportions kept.

    Movies are visited in a seeded order; a movie joins when its reviews fit in what each class still lacks.
    NumPy alone decides, so the split is the same on every version of every library.
    """
    labels, movies = np.asarray(labels), np.asarray(movies)
    if labels.shape != movies.shape or labels.ndim != 1:
        raise ValueError(f"labels and movies must be 1-D and of equal length; got shapes {labels.shape} and "
                         f"{movies.shape}.")
    if not 0 < n < len(labels):
        raise ValueError(f"Cannot hold out {n} items of {len(labels)}; choose 1 <= n < {len(labels)}.")
    classes, quotas = _quotas(labels, n)
    ids, movie_of = np.unique(movies, return_inverse=True)
    per_movie = np.zeros((len(ids), len(classes)), dtype=np.int64)  # reviews of each class per movie
    np.add.at(per_movie, (movie_of, np.searchsorted(classes, labels)), 1)
    lacking, chosen = quotas.copy(), np.zeros(len(ids), dtype=bool)
    for m in stable_order(len(ids), seed):
        if np.all(per_movie[m] <= lacking):
            chosen[m], lacking = True, lacking - per_movie[m]
            if not lacking.any():
                break
    return np.flatnonzero(chosen[movie_of])


def _validation_key() -> np.ndarray:
    return np.array([VALIDATION_SIZE, SPLIT_SEED], dtype=np.int64)


def _validation_indices(raw: dict[str, object]) -> np.ndarray:
    """The fixed validation indices: from the cache when it holds them for today's settings, else computed."""
    if "val_index" in raw and np.array_equal(raw.get("val_key"), _validation_key()):
        return raw["val_index"]
    return whole_movie_indices(raw["train_labels"], raw["train_movies"], VALIDATION_SIZE, SPLIT_SEED)


def _take(raw: dict[str, object], split: str, idx: np.ndarray, texts: list[str]) -> Split:
    """The reviews of ``split`` at ``idx``, whose texts are ``texts``."""
    return Split(texts, raw[f"{split}_labels"][idx].astype(np.int64), raw[f"{split}_movies"][idx])


def load_imdb(n_train: int | None = None, n_unsup: int | None = None, seed: int = 0,
              verbose: bool = True) -> Imdb:
    """IMDB splits: fixed val (whole movies) and test_subset; train shuffled and optionally subsampled (seeded)."""
    n_train = None if n_train is None else check.integer(n_train, "n_train", 1, hint="Pass None for all of train.")
    n_unsup = None if n_unsup is None else check.integer(n_unsup, "n_unsup", 0, hint="Pass None for all 50,000.")
    seed = check.integer(seed, "seed", 0)
    raw = _raw_for_splits(verbose, n_unsup)  # only the texts of the returned splits become str
    raw = dict(raw)  # its texts are popped below, split by split, so packed bytes go before the next split is decoded
    train_labels, test_labels = raw["train_labels"], raw["test_labels"]
    # Validation holds out every review of about a tenth of the training movies. IMDB has up to 30 reviews per
    # movie, and the official test set shares almost no movie with the training half; a random validation split
    # would share most of its movies with train and reward a model for memorising titles and names.
    val_idx = _validation_indices(raw)
    val_order = val_idx[stable_order(len(val_idx), SPLIT_SEED)]  # shuffled: every prefix mixes both classes
    rest = np.setdiff1d(np.arange(len(train_labels)), val_idx)
    if n_train is not None:
        check.integer(n_train, "n_train", 1, len(rest), hint="Pass None for all of train.")
        rest = rest[stratified_indices(train_labels[rest], n_train, seed)]
    rest = rest[stable_order(len(rest), seed)]  # shuffled, so no slice is all one class
    unsup_idx = np.arange(len(raw["unsup_texts"]))
    if n_unsup is not None:
        unsup_idx = np.sort(stable_order(len(unsup_idx), seed)[:n_unsup])
    train_texts = raw.pop("train_texts")
    train = _take(raw, "train", rest, _pick(train_texts, rest))
    val = _take(raw, "train", val_order, _pick(train_texts, val_order))
    del train_texts
    every_test = np.arange(len(test_labels))
    test = _take(raw, "test", every_test, _pick(raw.pop("test_texts"), every_test))
    subset = stratified_indices(test_labels, TEST_SUBSET_SIZE, SPLIT_SEED)
    test_subset = _take(raw, "test", subset, [test.texts[i] for i in subset])  # the same str objects as test's
    return Imdb(train=train, val=val, test=test, test_subset=test_subset, unsup=_pick(raw.pop("unsup_texts"), unsup_idx))


def prefetch() -> None:
    """Download (if needed), parse and cache the dataset, then print where the cache lives and the split sizes."""
    start = time.perf_counter()
    imdb = load_imdb()
    print(f"IMDB ready in {time.perf_counter() - start:.1f} s: train {len(imdb.train):,}, val {len(imdb.val):,}, "
          f"test {len(imdb.test):,}, unsup {len(imdb.unsup):,}; parsed cache {_find(CACHE_NAME)}; outputs go to "
          f"{work_dir()}.")
