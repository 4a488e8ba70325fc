"""IMDB Large Movie Review Dataset (Maas et al. 2011): find, download, extract, parse, cache and split.

Where the data comes from, in order: the processed cache, an extracted ``aclImdb/`` folder, an
``aclImdb_v1.tar.gz`` archive, and finally a verified download from the official URL. The data
directory is the repository's ``data/`` unless ``DLNLP_DATA_DIR`` names another folder.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_SIZE = 84_125_825
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
FOLDER_NAME = "aclImdb"
CACHE_NAME = "imdb-cache-v2.pkl"
CACHE_FORMAT = 2  # 2: adds each labelled review's IMDb movie (from urls_*.txt), for the whole-movie validation split
DATA_DIR_ENV = "DLNLP_DATA_DIR"
# Reviews per folder in the official release; the structural check after extraction uses these.
EXPECTED_COUNTS = {"train/pos": 12_500, "train/neg": 12_500, "test/pos": 12_500, "test/neg": 12_500,
                   "train/unsup": 50_000}
VALIDATION_SIZE = 2_500  # about this many, taken from train as whole movies, stratified, same for every notebook
TEST_SUBSET_SIZE = 2_000  # the series comparison subset of test, stratified, same for every notebook
SPLIT_SEED = 20110619  # fixed: the validation split and the test subset never depend on a notebook's seed

_REPO_ROOT = Path(__file__).resolve().parents[1]
_MANUAL_HINT = (
    "To supply the dataset by hand, download {url} on any machine with internet, then put the file "
    "(or its extracted aclImdb/ folder) into {folder}, or set {env} to a folder that holds it."
)


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


def data_dir() -> Path:
    """The data directory: ``$DLNLP_DATA_DIR`` when set, else the repository's ``data/``."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    if (_REPO_ROOT / "pyproject.toml").exists() and (_REPO_ROOT / "helpers").is_dir():
        return _REPO_ROOT / "data"
    return Path.cwd() / "data"


def _is_writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def work_dir() -> Path:
    """Where outputs are written: the data directory if writable, else the repository's own ``data/``."""
    primary = data_dir()
    if _is_writable(primary):
        return primary
    fallback = _REPO_ROOT / "data"
    if fallback != primary and _is_writable(fallback):
        return fallback
    raise DatasetError(
        f"The data directory {primary} is not writable, and neither is {fallback}. Set {DATA_DIR_ENV} to a "
        "folder you can write to (a shared read-only copy works only once its cache has been built there)."
    )


def clean_text(text: str) -> str:
    """Turn a raw review into plain text: ``<br />`` and other tags become spaces, entities are decoded."""
    text = re.sub(r"<[^>]{0,200}>", " ", text)
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


def download(url: str, dest: Path, sha256: str, size: int | None = None, timeout: float = 30.0) -> Path:
    """Stream ``url`` to a temporary file beside ``dest``, verify size and SHA-256, then move it into place."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    hint = _MANUAL_HINT.format(url=url, folder=dest.parent, env=DATA_DIR_ENV)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                announced = int(response.headers.get("Content-Length") or 0) or None
                total = size if size is not None else announced
                digest = hashlib.sha256()
                received = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {dest.name}") as bar:
                    while block := response.read(1 << 20):
                        out.write(block)
                        digest.update(block)
                        received += len(block)
                        bar.update(len(block))
        except urllib.error.HTTPError as err:
            raise DatasetError(f"The server answered HTTP {err.code} ({err.reason}) for {url}. {hint}") from err
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, TimeoutError) or isinstance(err, TimeoutError):
                raise DatasetError(
                    f"The download of {url} timed out after {timeout:g} s without data. Check the connection "
                    f"and try again. {hint}"
                ) from err
            raise DatasetError(
                f"Could not download {url} ({reason}). You may be offline or behind a firewall. {hint}"
            ) from err
        except (OSError, http.client.HTTPException) as err:  # e.g. the connection dropped mid-body
            raise DatasetError(f"The download of {url} broke off ({err}). Try again. {hint}") from err
        if total is not None and received != total:
            raise DatasetError(
                f"The download of {url} is incomplete or the wrong file: got {received:,} bytes, expected "
                f"{total:,}. The partial file was removed; try again. {hint}"
            )
        if digest.hexdigest() != sha256:
            raise DatasetError(
                f"Checksum mismatch for {url}: SHA-256 {digest.hexdigest()}, expected {sha256}. The file "
                f"was removed; try again, and if it persists the file on the server has changed. {hint}"
            )
        publish(tmp, dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()


def _count_reviews(root: Path) -> dict[str, int]:
    return {sub: sum(1 for _ in (root / sub).glob("*.txt")) if (root / sub).is_dir() else 0
            for sub in EXPECTED_COUNTS}


def check_structure(root: Path) -> None:
    """Raise ``DatasetError`` unless ``root`` (an ``aclImdb/`` folder) holds the expected review counts."""
    counts = _count_reviews(root)
    wrong = {sub: n for sub, n in counts.items() if n != EXPECTED_COUNTS[sub]}
    if wrong:
        details = ", ".join(f"{sub}: {n:,} (expected {EXPECTED_COUNTS[sub]:,})" for sub, n in wrong.items())
        raise DatasetError(
            f"{root} does not have the layout of the IMDB dataset ({details}). Delete it and let the "
            f"tutorial extract it again from {ARCHIVE_NAME}, or download a fresh copy from {IMDB_URL}."
        )


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


def _read_movies(folder: Path, n: int) -> np.ndarray:
    """IMDb movie number of reviews 0..n-1 of ``folder`` (``train/pos`` etc.), from the dataset's ``urls_pos.txt``."""
    urls = folder.parent / f"urls_{folder.name}.txt"
    try:
        lines = urls.read_text(encoding="utf-8").split()
        movies = np.array([int(re.search(r"/title/tt(\d+)", line).group(1)) for line in lines[:n]], dtype=np.int64)
    except (OSError, AttributeError) as err:
        raise DatasetError(
            f"{urls} is missing or unreadable ({err}); it names each review's movie, which the validation split "
            f"needs. Delete {folder.parents[1]} and let the tutorial extract it again from the official "
            f"{ARCHIVE_NAME} ({IMDB_URL})."
        ) from err
    if len(movies) != n:
        raise DatasetError(f"{urls} names {len(movies):,} reviews' movies, expected {n:,}. Delete {folder.parents[1]} "
                           f"and extract it again from the official {ARCHIVE_NAME} ({IMDB_URL}).")
    return movies


def parse(root: Path) -> dict[str, object]:
    """Read an ``aclImdb/`` folder into cleaned texts, labels and movies (order: negatives, then positives)."""
    out: dict[str, object] = {"format": CACHE_FORMAT}
    for split in ("train", "test"):
        neg, pos = _read_folder(root / split / "neg"), _read_folder(root / split / "pos")
        out[f"{split}_texts"] = neg + pos
        out[f"{split}_labels"] = np.array([0] * len(neg) + [1] * len(pos), dtype=np.int8)
        # review files are named <id>_<rating>.txt with ids 0..n-1, and line id of urls_*.txt is that review's page
        out[f"{split}_movies"] = np.concatenate([_read_movies(root / split / "neg", len(neg)),
                                                 _read_movies(root / split / "pos", len(pos))])
    out["unsup_texts"] = _read_folder(root / "train" / "unsup")
    return out


def _write_atomic_pickle(obj: object, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_cache(path: Path) -> dict[str, object] | None:
    try:
        with path.open("rb") as fh:
            raw = pickle.load(fh)
    except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
        print(f"Ignoring the unreadable cache {path}; it will be rebuilt from the dataset.")
        return None
    if not isinstance(raw, dict) or raw.get("format") != CACHE_FORMAT:
        return None
    return raw


def _find(name: str) -> Path | None:
    for folder in dict.fromkeys([data_dir(), _REPO_ROOT / "data"]):
        if (folder / name).exists():
            return folder / name
    return None


def load_raw(verbose: bool = True) -> dict[str, object]:
    """Return the full parsed dataset, building the cache (extracting or downloading first) when needed."""
    say = print if verbose else (lambda *a, **k: None)
    cache = _find(CACHE_NAME)
    if cache is not None and (raw := _read_cache(cache)) is not None:
        return raw
    start = time.perf_counter()
    root = _find(FOLDER_NAME)
    if root is not None:
        check_structure(root)
    else:
        archive = _find(ARCHIVE_NAME)
        if archive is None:
            archive = download(IMDB_URL, work_dir() / ARCHIVE_NAME, IMDB_SHA256, IMDB_SIZE)
        elif archive.stat().st_size == IMDB_SIZE and sha256_of(archive) != IMDB_SHA256:
            say(f"Note: {archive} differs from the official release; using it after a structural check.")
        say(f"Extracting {archive} ...")
        root = extract(archive, work_dir())
    say(f"Parsing {root} ...")
    raw = parse(root)
    _write_atomic_pickle(raw, work_dir() / CACHE_NAME)
    say(f"Cached the parsed dataset in {work_dir() / CACHE_NAME} ({time.perf_counter() - start:.1f} s).")
    return raw


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Pick ``n`` indices with the label proportions of ``labels``, reproducibly for a given seed."""
    labels = np.asarray(labels)
    if not 0 < n <= len(labels):
        raise ValueError(f"Cannot take {n} items from {len(labels)}; choose 1 <= n <= {len(labels)}.")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.floor(counts / counts.sum() * n).astype(int)
    quotas[np.argsort(-(counts / counts.sum() * n - quotas))[: n - quotas.sum()]] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False) for c, q in zip(classes, quotas, strict=True)]
    return np.sort(np.concatenate(picked))


def whole_movie_indices(labels: np.ndarray, movies: np.ndarray, n: int, seed: int) -> np.ndarray:
    """About ``n`` indices made of whole movies (every review of a picked movie), with the label proportions kept."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels, movies = np.asarray(labels), np.asarray(movies)
    if not 0 < n < len(labels):
        raise ValueError(f"Cannot hold out {n} items of {len(labels)}; choose 1 <= n < {len(labels)}.")
    folds = StratifiedGroupKFold(n_splits=max(2, round(len(labels) / n)), shuffle=True, random_state=seed)
    _, held_out = next(folds.split(np.zeros(len(labels)), labels, groups=movies))
    return held_out


def _take(raw: dict[str, object], split: str, idx: np.ndarray) -> Split:
    texts, labels, movies = raw[f"{split}_texts"], raw[f"{split}_labels"], raw[f"{split}_movies"]
    return Split([texts[i] for i in idx], labels[idx].astype(np.int64), movies[idx])


def load_imdb(n_train: int | None = None, n_unsup: int | None = None, seed: int = 0,
              verbose: bool = True) -> Imdb:
    """IMDB splits: fixed val (whole movies) and test_subset; train shuffled and optionally subsampled (seeded)."""
    raw = load_raw(verbose=verbose)
    train_labels, test_labels = raw["train_labels"], raw["test_labels"]
    # Validation holds out every review of about a tenth of the training movies. IMDB has up to 30 reviews per
    # movie, and the official test set shares almost no movie with the training half; a random validation split
    # would share most of its movies with train and reward a model for memorising titles and names.
    val_idx = whole_movie_indices(train_labels, raw["train_movies"], VALIDATION_SIZE, SPLIT_SEED)
    val_order = np.random.default_rng(SPLIT_SEED).permutation(val_idx)  # shuffled: every prefix mixes both classes
    rest = np.setdiff1d(np.arange(len(train_labels)), val_idx)
    if n_train is not None:
        rest = rest[stratified_indices(train_labels[rest], n_train, seed)]
    rest = np.random.default_rng(seed).permutation(rest)  # shuffled, so no slice is all one class
    unsup = list(raw["unsup_texts"])
    if n_unsup is not None:
        unsup = [unsup[i] for i in np.sort(np.random.default_rng(seed).permutation(len(unsup))[:n_unsup])]
    return Imdb(
        train=_take(raw, "train", rest),
        val=_take(raw, "train", val_order),
        test=_take(raw, "test", np.arange(len(test_labels))),
        test_subset=_take(raw, "test", stratified_indices(test_labels, TEST_SUBSET_SIZE, SPLIT_SEED)),
        unsup=unsup,
    )


def prefetch() -> None:
    """Download (if needed), extract and cache the dataset, then print where it lives and its sizes."""
    start = time.perf_counter()
    imdb = load_imdb()
    print(f"IMDB ready in {time.perf_counter() - start:.1f} s: train {len(imdb.train):,}, val {len(imdb.val):,}, "
          f"test {len(imdb.test):,}, unsup {len(imdb.unsup):,}; data directory {data_dir()}, "
          f"writable outputs in {work_dir()}.")
