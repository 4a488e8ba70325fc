"""The splits are a function of the data and the seed alone: pinned here, so no library version can move them."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

import helpers.data as data

# The IMDB archive a user already downloaded: CI and developers keep one in ../shared/data beside the clone.
SHARED_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / data.ARCHIVE_NAME


def digest(indices: np.ndarray) -> str:
    """A short fingerprint of an index array (its int64 little-endian bytes)."""
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()[:16]


def synthetic() -> tuple[np.ndarray, np.ndarray]:
    """600 reviews, a third positive, in 150 movies of 4 reviews with mixed labels."""
    labels = np.array([i % 3 == 0 for i in range(600)], dtype=np.int8)
    movies = np.arange(600) // 4 + 7 * (np.arange(600) % 2)
    return labels, movies


def test_stable_order_is_pinned() -> None:
    assert data.stable_order(10, 0).tolist() == [3, 2, 1, 8, 6, 0, 7, 4, 5, 9]
    assert sorted(data.stable_order(1000, 7).tolist()) == list(range(1000))


def test_synthetic_splits_are_pinned() -> None:
    labels, movies = synthetic()
    assert digest(data.whole_movie_indices(labels, movies, 100, 5)) == "40e8bba6008d96d0"
    assert digest(data.stratified_indices(labels, 50, 3)) == "9d90e8da55e49f2c"


def test_whole_movie_split_keeps_movies_whole_and_proportions() -> None:
    labels, movies = synthetic()
    held = data.whole_movie_indices(labels, movies, 100, 5)
    rest = np.setdiff1d(np.arange(len(labels)), held)
    assert set(movies[held]).isdisjoint(movies[rest])
    assert 95 <= len(held) <= 100 and abs(labels[held].mean() - labels.mean()) < 0.02
    assert not np.array_equal(held, data.whole_movie_indices(labels, movies, 100, 6))


def test_whole_movie_split_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="equal length"):
        data.whole_movie_indices(np.zeros(10), np.zeros(9), 3, seed=0)


def _labels_and_movies(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each labelled split's labels and movies as ``parse_archive`` orders them, read from the urls files alone."""
    urls: dict[str, str] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if (m := data._URLS_MEMBER.fullmatch(member.name)) and member.isfile():
                urls[f"{m[1]}/{m[2]}"] = tar.extractfile(member).read().decode("utf-8")
    out = {}
    for split in ("train", "test"):
        n = 12_500
        movies = np.concatenate([data._movies(urls[f"{split}/{lab}"], n, split, "") for lab in ("neg", "pos")])
        out[split] = (np.repeat(np.array([0, 1], dtype=np.int8), n), movies)
    return out


@pytest.mark.skipif(not SHARED_ARCHIVE.is_file() or os.environ.get("DLNLP_SKIP_REAL_SPLITS") == "1",
                    reason=f"no IMDB archive at {SHARED_ARCHIVE}")
def test_real_imdb_splits_are_pinned() -> None:
    """The validation reviews and the comparison subset every learner gets, on any NumPy or scikit-learn."""
    splits = _labels_and_movies(SHARED_ARCHIVE)
    labels, movies = splits["train"]
    val = data.whole_movie_indices(labels, movies, 2_500, data.SPLIT_SEED)
    assert (len(val), int(labels[val].sum())) == (2_500, 1_250)
    assert digest(val) == "1d4d739a54339f41"
    test_labels, _ = splits["test"]
    assert digest(data.stratified_indices(test_labels, 2_000, data.SPLIT_SEED)) == "c7e93441880cb76e"


# --- text cleaning ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "clean"), [
    ("Great<br /><br />film<br/>!", "Great film !"),
    ("<i>Casablanca</i>, <B>bold</B>, <p>para</p><hr>", "Casablanca , bold , para"),
    ('<a href="https://x">link</a>', "link"),
    ("5 < 10 and 10 > 5", "5 < 10 and 10 > 5"),
    ("< Cough , cough > and <grin> <SPOILER>", "< Cough , cough > and <grin> <SPOILER>"),
    ("<-----Minor Spoilers!----->", "<-----Minor Spoilers!----->"),
    ("<<<<<br />x", "<<<< x"),
    ("&lt;br&gt; stays text &amp; more", "<br> stays text & more"),
])
def test_clean_text_removes_html_tags_only(raw: str, clean: str) -> None:
    assert data.clean_text(raw) == clean


def test_clean_text_wants_one_string() -> None:
    with pytest.raises(TypeError, match="one review as a str; got list"):
        data.clean_text(["a review"])  # type: ignore[arg-type]
