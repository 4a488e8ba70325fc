"""load_imdb decodes only the reviews its splits return, and returns exactly what decoding them all returned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_COUNTS, make_archive, tiny_raw

import helpers.data as data

COUNTS = {**SMALL_COUNTS, "train/pos": 30, "train/neg": 30, "test/pos": 10, "test/neg": 10, "train/unsup": 12}


def _reference(raw: dict, n_train: int | None, n_unsup: int | None, seed: int) -> data.Imdb:
    """``load_imdb`` as it was before it read the cache packed: every text decoded (``load_raw``), then picked."""
    train_labels, test_labels = raw["train_labels"], raw["test_labels"]
    val_idx = data._validation_indices(raw)
    val_order = val_idx[data.stable_order(len(val_idx), data.SPLIT_SEED)]
    rest = np.setdiff1d(np.arange(len(train_labels)), val_idx)
    if n_train is not None:
        rest = rest[data.stratified_indices(train_labels[rest], n_train, seed)]
    rest = rest[data.stable_order(len(rest), seed)]
    unsup = list(raw["unsup_texts"])
    if n_unsup is not None:
        unsup = [unsup[i] for i in np.sort(data.stable_order(len(unsup), seed)[:n_unsup])]

    def take(split: str, idx: np.ndarray) -> data.Split:
        texts, labels, movies = raw[f"{split}_texts"], raw[f"{split}_labels"], raw[f"{split}_movies"]
        return data.Split([texts[i] for i in idx], labels[idx].astype(np.int64), movies[idx])

    return data.Imdb(train=take("train", rest), val=take("train", val_order),
                     test=take("test", np.arange(len(test_labels))),
                     test_subset=take("test", data.stratified_indices(test_labels, data.TEST_SUBSET_SIZE, data.SPLIT_SEED)),
                     unsup=unsup)


def _assert_same(got: data.Imdb, want: data.Imdb) -> None:
    for name in ("train", "val", "test", "test_subset"):
        a, b = getattr(got, name), getattr(want, name)
        assert type(a.texts) is list and a.texts == b.texts, name
        assert a.labels.dtype == b.labels.dtype and np.array_equal(a.labels, b.labels), name
        assert a.movies.dtype == b.movies.dtype and np.array_equal(a.movies, b.movies), name
    assert type(got.unsup) is list and got.unsup == want.unsup
    assert {id(t) for t in got.test_subset.texts} <= {id(t) for t in got.test.texts}  # shared, not decoded twice


def _text(split: str, i: int) -> str:
    """Reviews in one to four bytes per character, and some empty ones."""
    return "" if i % 7 == 3 else f"{split} {i}: café naïve, 日本語 🎬 «{'x' * (i % 5)}»"


@pytest.fixture
def unicode_cache(monkeypatch: pytest.MonkeyPatch, isolated_data_dir: Path) -> Path:
    """A parsed cache of 60 train (3 reviews a movie), 20 test and 12 unsup reviews with non-ASCII and empty texts."""
    monkeypatch.setattr(data, "VALIDATION_SIZE", 12)
    raw: dict[str, object] = {}
    for split, n in (("train", 60), ("test", 20)):
        raw[f"{split}_texts"] = [_text(split, i) for i in range(n)]
        raw[f"{split}_labels"] = np.array([0] * (n // 2) + [1] * (n // 2), dtype=np.int8)
        raw[f"{split}_movies"] = 5_000 + np.arange(n, dtype=np.int64) // 3
    raw["unsup_texts"] = [_text("unsup", i) for i in range(12)]
    raw["val_index"], raw["val_key"] = data._validation_indices(raw), data._validation_key()
    data.write_cache(raw, isolated_data_dir / data.CACHE_NAME)
    return isolated_data_dir / data.CACHE_NAME


@pytest.mark.parametrize(("n_train", "n_unsup", "seed"), [(None, None, 0), (10, 0, 42), (7, 5, 3), (None, 100, 1),
                                                          (48, 12, 7)])
def test_packed_load_returns_what_decoding_everything_returned(unicode_cache: Path, n_train: int | None,
                                                                 n_unsup: int | None, seed: int) -> None:
    want = _reference(data.load_raw(verbose=False), n_train, n_unsup, seed)
    _assert_same(data.load_imdb(n_train=n_train, n_unsup=n_unsup, seed=seed, verbose=False), want)
    assert len(want.train) == (48 if n_train is None else n_train) and len(want.val) == 12
    assert "" in want.test.texts and any("🎬" in t for t in want.train.texts)


@pytest.mark.parametrize(("n_train", "n_unsup"), [(10, 0), (None, 5), (None, None)])
def test_only_the_returned_texts_are_decoded(monkeypatch: pytest.MonkeyPatch, unicode_cache: Path,
                                            n_train: int | None, n_unsup: int | None) -> None:
    decoded: list[int] = []
    buffers: list[bool] = []
    real_take, real_init = data._Packed.take, data._Packed.__init__

    def take(self: data._Packed, idx: np.ndarray | None = None) -> list[str]:
        texts = real_take(self, idx)
        decoded.append(len(texts))
        return texts

    def init(self: data._Packed, buffer: np.ndarray | None, *args: object, **kwargs: object) -> None:
        buffers.append(buffer is not None)
        real_init(self, buffer, *args, **kwargs)

    monkeypatch.setattr(data._Packed, "take", take)
    monkeypatch.setattr(data._Packed, "__init__", init)
    imdb = data.load_imdb(n_train=n_train, n_unsup=n_unsup, seed=1, verbose=False)
    returned = len(imdb.train) + len(imdb.val) + len(imdb.test) + len(imdb.unsup)  # test_subset reuses test's
    assert sum(decoded) == returned and (returned < 60 + 20 + 12 or (n_train, n_unsup) == (None, None))
    assert buffers == [True, True, n_unsup != 0]  # train, test, unsup: n_unsup=0 never reads the unsup bytes


@pytest.mark.parametrize("source", ["archive", "folder"])
def test_a_dataset_built_afresh_splits_as_its_cache_does(monkeypatch: pytest.MonkeyPatch, isolated_data_dir: Path,
                                                         source: str) -> None:
    monkeypatch.setattr(data, "EXPECTED_COUNTS", COUNTS)
    monkeypatch.setattr(data, "VALIDATION_SIZE", 12)
    (isolated_data_dir / data.ARCHIVE_NAME).write_bytes(make_archive(COUNTS, reviews_per_movie=3))
    if source == "folder":
        data.extract(isolated_data_dir / data.ARCHIVE_NAME, isolated_data_dir)
        (isolated_data_dir / data.ARCHIVE_NAME).unlink()
    for kw in ({"n_train": 10, "n_unsup": 0, "seed": 42}, {"n_unsup": 5, "seed": 3}, {}):
        (isolated_data_dir / data.CACHE_NAME).unlink(missing_ok=True)
        built = data.load_imdb(**kw, verbose=False)  # parsed from the archive or the folder, then cached
        assert (isolated_data_dir / data.CACHE_NAME).is_file()
        want = _reference(data.load_raw(verbose=False), kw.get("n_train"), kw.get("n_unsup"), kw.get("seed", 0))
        _assert_same(built, want)
        _assert_same(data.load_imdb(**kw, verbose=False), want)  # from the cache, packed


def _rewrite(cache: Path, **changes: np.ndarray) -> None:
    with np.load(cache, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    data.write_npz(cache, {**arrays, **changes})


@pytest.mark.parametrize("damage", ["bad byte", "text starts inside a character"])
def test_a_cache_whose_texts_do_not_decode_is_rebuilt(isolated_data_dir: Path, capsys: pytest.CaptureFixture[str],
                                                      damage: str) -> None:
    (isolated_data_dir / data.ARCHIVE_NAME).write_bytes(make_archive())
    cache = isolated_data_dir / data.CACHE_NAME
    good = data.load_imdb(verbose=False)
    if damage == "bad byte":
        with np.load(cache) as npz:
            text = npz["train_text"].copy()
        text[3] = 0xFF
        _rewrite(cache, train_text=text)
    else:  # the whole buffer is UTF-8, but the offsets cut "é" in two
        text, offsets = data.pack_texts(["é", "a", "b", "c", "d", "e"])
        _rewrite(cache, train_text=text, train_offsets=offsets + np.array([0, -1, 0, 0, 0, 0, 0]))
    assert data.read_cache(cache) is None and "unreadable cache" in capsys.readouterr().out
    _assert_same(data.load_imdb(verbose=False), good)  # rebuilt from the archive
    assert "unreadable cache" in capsys.readouterr().out and data.read_cache(cache) is not None


def test_unpack_texts_refuses_bytes_that_are_not_utf8() -> None:
    buffer, offsets = data.pack_texts(["ok", "é"])
    buffer = buffer.copy()
    buffer[-1] = 0xFF
    with pytest.raises(UnicodeDecodeError):
        data.unpack_texts(buffer, offsets)
    with pytest.raises(ValueError, match="offsets"):
        data.unpack_texts(buffer, offsets[:-1])


def test_load_imdb_splits_what_its_reader_returns_and_leaves_it_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 40
    raw = tiny_raw(n)
    monkeypatch.setattr(data, "_raw_for_splits", lambda verbose=True, n_unsup=None: raw)
    monkeypatch.setattr(data, "VALIDATION_SIZE", 4)
    keys = {key: list(value) if isinstance(value, list) else value.copy() for key, value in raw.items()}
    for kw in ({"n_train": 10, "n_unsup": 3, "seed": 2}, {}):
        _assert_same(data.load_imdb(**kw), _reference(raw, kw.get("n_train"), kw.get("n_unsup"), kw.get("seed", 0)))
    assert raw.keys() == keys.keys() and all(np.array_equal(raw[k], keys[k]) for k in keys)  # left as it was
