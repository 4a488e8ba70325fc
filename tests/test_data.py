"""The IMDB data layer: download, extraction, parsing, caching, splits and every failure path."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_COUNTS, Server, make_archive, movie_of, sha256

import helpers.data as data
from helpers.data import DatasetError


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp")) or p.name.startswith(".extract-"))


def _serve_official(monkeypatch: pytest.MonkeyPatch, server: Server, payload: bytes, path: str = "/imdb.tar.gz") -> None:
    server.routes[path] = (200, payload, {})
    monkeypatch.setattr(data, "IMDB_URL", server.url(path))
    monkeypatch.setattr(data, "IMDB_SHA256", sha256(payload))
    monkeypatch.setattr(data, "IMDB_SIZE", len(payload))


# --- text cleaning and paths ---------------------------------------------------------------------------------

def test_clean_text_removes_markup_and_decodes_entities() -> None:
    assert data.clean_text("Great<br /><br />film &amp; cast,  &quot;wow&quot;<i>!</i>") == 'Great film & cast, "wow" !'


def test_data_dir_override_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "shared"))
    assert data.data_dir() == (tmp_path / "shared").resolve()
    monkeypatch.delenv(data.DATA_DIR_ENV)
    repo = tmp_path / "repo"
    (repo / "helpers").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    assert data.data_dir() == repo / "data"


def test_unwritable_data_dir_falls_back_then_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(data, "_is_writable", lambda folder: folder == tmp_path / "repo" / "data")
    assert data.work_dir() == tmp_path / "repo" / "data"
    monkeypatch.setattr(data, "_is_writable", lambda folder: False)
    with pytest.raises(DatasetError, match="not writable.*DLNLP_DATA_DIR"):
        data.work_dir()


# --- download ------------------------------------------------------------------------------------------------

def test_download_good_archive(http_server: Server, isolated_data_dir: Path) -> None:
    payload = make_archive()
    http_server.routes["/good"] = (200, payload, {})
    dest = isolated_data_dir / "a.tar.gz"
    assert data.download(http_server.url("/good"), dest, sha256(payload), len(payload)) == dest
    assert dest.read_bytes() == payload
    assert _leftovers(isolated_data_dir) == []
    assert dest.stat().st_mode & 0o044 == 0o044  # a shared classroom copy must be readable by learners


def test_download_checksum_mismatch_removes_file(http_server: Server, isolated_data_dir: Path) -> None:
    payload = make_archive()
    http_server.routes["/bad"] = (200, payload, {})
    dest = isolated_data_dir / "a.tar.gz"
    with pytest.raises(DatasetError, match="Checksum mismatch.*removed"):
        data.download(http_server.url("/bad"), dest, "0" * 64, len(payload))
    assert not dest.exists() and _leftovers(isolated_data_dir) == []


@pytest.mark.parametrize("size_known", [True, False])
def test_download_truncated_body(http_server: Server, isolated_data_dir: Path, size_known: bool) -> None:
    payload = make_archive()
    http_server.routes["/short"] = (200, payload[:100], {"length": len(payload)})
    dest = isolated_data_dir / "a.tar.gz"
    with pytest.raises(DatasetError, match="incomplete|broke off"):
        data.download(http_server.url("/short"), dest, sha256(payload), len(payload) if size_known else None)
    assert not dest.exists() and _leftovers(isolated_data_dir) == []


@pytest.mark.parametrize("status", [404, 500])
def test_download_http_errors(http_server: Server, isolated_data_dir: Path, status: int) -> None:
    http_server.routes["/err"] = (status, b"nope", {})
    with pytest.raises(DatasetError, match=f"HTTP {status}.*put the file"):
        data.download(http_server.url("/err"), isolated_data_dir / "a.tar.gz", "0" * 64)
    assert list(isolated_data_dir.iterdir()) == []


def test_download_connection_refused_says_how_to_work_offline(refused_url: str, isolated_data_dir: Path) -> None:
    with pytest.raises(DatasetError, match="offline.*put the file.*DLNLP_DATA_DIR"):
        data.download(refused_url, isolated_data_dir / "a.tar.gz", "0" * 64)
    assert list(isolated_data_dir.iterdir()) == []


def test_download_slow_server_times_out(http_server: Server, isolated_data_dir: Path) -> None:
    http_server.routes["/slow"] = (200, b"late", {"delay": 3})
    with pytest.raises(DatasetError, match="timed out"):
        data.download(http_server.url("/slow"), isolated_data_dir / "a.tar.gz", sha256(b"late"), timeout=0.5)
    assert list(isolated_data_dir.iterdir()) == []


def test_failed_download_keeps_existing_good_file(http_server: Server, isolated_data_dir: Path) -> None:
    good = make_archive()
    dest = isolated_data_dir / "a.tar.gz"
    dest.write_bytes(good)
    http_server.routes["/bad"] = (200, b"garbage", {})
    with pytest.raises(DatasetError):
        data.download(http_server.url("/bad"), dest, sha256(good), len(good))
    assert dest.read_bytes() == good


# --- extraction ----------------------------------------------------------------------------------------------

def _write(folder: Path, payload: bytes, name: str = data.ARCHIVE_NAME) -> Path:
    (folder / name).write_bytes(payload)
    return folder / name


@pytest.fixture(params=["data filter", "manual checks"])
def extraction_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run extraction tests with tarfile's data filter and with the checks used on Python < 3.11.4."""
    if request.param == "manual checks":
        monkeypatch.setattr(data, "_HAS_DATA_FILTER", False)
    return request.param


def test_extract_rejects_parent_traversal(isolated_data_dir: Path, extraction_mode: str) -> None:
    evil = tarfile.TarInfo("aclImdb/../../escaped.txt")
    evil.size = 1
    archive = _write(isolated_data_dir, make_archive(extra=[evil]))
    with pytest.raises(DatasetError, match="unsafe member"):
        data.extract(archive, isolated_data_dir)
    assert not (isolated_data_dir.parent / "escaped.txt").exists()
    assert not (isolated_data_dir / "aclImdb").exists() and _leftovers(isolated_data_dir) == []


def test_extract_rejects_symlink_out_of_target(extraction_mode: str, isolated_data_dir: Path) -> None:
    link = tarfile.TarInfo("aclImdb/train/pos/link.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = _write(isolated_data_dir, make_archive(extra=[link]))
    with pytest.raises(DatasetError, match="unsafe member"):
        data.extract(archive, isolated_data_dir)
    assert not (isolated_data_dir / "aclImdb").exists() and _leftovers(isolated_data_dir) == []


def test_extract_rejects_absolute_path(isolated_data_dir: Path, extraction_mode: str) -> None:
    evil = tarfile.TarInfo("/tmp/dlnlp-escaped.txt")
    evil.size = 1
    archive = _write(isolated_data_dir, make_archive(extra=[evil]))
    try:  # the data filter strips the leading "/" and extracts inside; the manual checks refuse the member
        data.extract(archive, isolated_data_dir)
    except DatasetError as err:
        assert "unsafe member" in str(err)
    assert not Path("/tmp/dlnlp-escaped.txt").exists()


def test_extract_truncated_archive(extraction_mode: str, isolated_data_dir: Path) -> None:
    payload = make_archive()
    archive = _write(isolated_data_dir, payload[: len(payload) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        data.extract(archive, isolated_data_dir)
    assert not (isolated_data_dir / "aclImdb").exists() and _leftovers(isolated_data_dir) == []


def test_extract_unexpected_layout(extraction_mode: str, isolated_data_dir: Path) -> None:
    archive = _write(isolated_data_dir, make_archive({**SMALL_COUNTS, "test/pos": 1}))
    with pytest.raises(DatasetError, match=r"test/pos: 1 \(expected 4\)"):
        data.extract(archive, isolated_data_dir)
    assert not (isolated_data_dir / "aclImdb").exists() and _leftovers(isolated_data_dir) == []


# --- the whole chain -----------------------------------------------------------------------------------------

def test_load_downloads_once_then_uses_cache(monkeypatch: pytest.MonkeyPatch, http_server: Server,
                                             isolated_data_dir: Path) -> None:
    _serve_official(monkeypatch, http_server, make_archive())
    first = data.load_imdb()
    assert http_server.hits == {"/imdb.tar.gz": 1}
    assert (isolated_data_dir / data.CACHE_NAME).exists() and (isolated_data_dir / "aclImdb").is_dir()
    assert (isolated_data_dir / data.CACHE_NAME).stat().st_mode & 0o044 == 0o044
    assert (len(first.train), len(first.val), len(first.test), len(first.test_subset), len(first.unsup)) == (4, 2, 8, 4, 2)
    assert all("<br" not in t and "&quot;" not in t for t in first.train.texts + first.test.texts)
    # the cache alone serves the data: no second download, even with archive and folder gone
    os.remove(isolated_data_dir / data.ARCHIVE_NAME)
    os.rename(isolated_data_dir / "aclImdb", isolated_data_dir / "moved")
    second = data.load_imdb()
    assert http_server.hits == {"/imdb.tar.gz": 1}
    assert second.test.texts == first.test.texts


def test_load_uses_archive_supplied_by_hand(extraction_mode: str, isolated_data_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _write(isolated_data_dir, make_archive())
    imdb = data.load_imdb()
    assert len(imdb.test) == 8
    assert "Extracting" in capsys.readouterr().out


def test_load_uses_extracted_folder(isolated_data_dir: Path) -> None:
    data.extract(_write(isolated_data_dir, make_archive(), "copy.tar.gz"), isolated_data_dir)
    assert len(data.load_imdb().unsup) == 2


def test_load_offline_without_data_explains_manual_placement(monkeypatch: pytest.MonkeyPatch, refused_url: str) -> None:
    monkeypatch.setattr(data, "IMDB_URL", refused_url)
    with pytest.raises(DatasetError, match="put the file.*DLNLP_DATA_DIR"):
        data.load_imdb()


def test_corrupt_cache_is_rebuilt(isolated_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(isolated_data_dir, make_archive())
    (isolated_data_dir / data.CACHE_NAME).write_bytes(b"not a pickle")
    assert len(data.load_imdb().test) == 8
    assert "unreadable cache" in capsys.readouterr().out


def test_read_only_shared_copy_writes_to_own_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    isolated_data_dir: Path) -> None:
    _write(isolated_data_dir, make_archive())
    own = tmp_path / "repo" / "data"
    monkeypatch.setattr(data, "_is_writable", lambda folder: folder == own and (own.mkdir(parents=True, exist_ok=True) or True))
    assert len(data.load_imdb().test) == 8
    assert (own / data.CACHE_NAME).exists() and not (isolated_data_dir / data.CACHE_NAME).exists()


# --- splits --------------------------------------------------------------------------------------------------

def test_stratified_indices_keep_proportions_and_are_reproducible() -> None:
    labels = np.array([0] * 300 + [1] * 100)
    idx = data.stratified_indices(labels, 40, seed=1)
    assert len(idx) == 40 and len(set(idx)) == 40 and labels[idx].sum() == 10
    assert np.array_equal(idx, data.stratified_indices(labels, 40, seed=1))
    assert not np.array_equal(idx, data.stratified_indices(labels, 40, seed=2))
    with pytest.raises(ValueError, match="Cannot take 500"):
        data.stratified_indices(labels, 500, seed=0)


def test_splits_are_disjoint_fixed_and_subsampled(isolated_data_dir: Path) -> None:
    _write(isolated_data_dir, make_archive())
    a, b = data.load_imdb(seed=0), data.load_imdb(n_train=2, n_unsup=1, seed=5)
    assert a.val.texts == b.val.texts and a.test_subset.texts == b.test_subset.texts  # independent of the seed
    assert not set(a.val.texts) & set(a.train.texts)
    assert sorted(b.train.labels.tolist()) == [0, 1] and len(b.unsup) == 1
    assert set(a.test_subset.texts) <= set(a.test.texts) and a.test_subset.labels.sum() == 2


def test_validation_prefixes_mix_both_classes(monkeypatch: pytest.MonkeyPatch, isolated_data_dir: Path) -> None:
    counts = {**SMALL_COUNTS, "train/pos": 20, "train/neg": 20}
    monkeypatch.setattr(data, "EXPECTED_COUNTS", counts)
    monkeypatch.setattr(data, "VALIDATION_SIZE", 20)
    _write(isolated_data_dir, make_archive(counts))
    val = data.load_imdb().val
    assert val.labels.sum() == 10 and 0 < val.labels[:6].sum() < 6  # not all negatives first, as sorted indices were
    assert val.texts == data.load_imdb(seed=9).val.texts  # the order is fixed too


def test_validation_holds_out_whole_movies(monkeypatch: pytest.MonkeyPatch, isolated_data_dir: Path) -> None:
    counts = {**SMALL_COUNTS, "train/pos": 30, "train/neg": 30}
    monkeypatch.setattr(data, "EXPECTED_COUNTS", counts)
    monkeypatch.setattr(data, "VALIDATION_SIZE", 12)
    _write(isolated_data_dir, make_archive(counts, reviews_per_movie=3))
    imdb = data.load_imdb()
    assert set(imdb.val.movies).isdisjoint(imdb.train.movies)  # no movie on both sides
    for movie in set(imdb.val.movies):  # every review of a held-out movie is held out
        assert np.sum(imdb.val.movies == movie) == 3
    assert len(imdb.val) == 12 and imdb.val.labels.sum() == 6  # about VALIDATION_SIZE, both classes in proportion
    assert imdb.test.movies[0] == movie_of("test/neg", 0) and imdb.test.movies[-1] == movie_of("test/pos", 3, 3)
    assert np.array_equal(imdb.val.movies, data.load_imdb(n_train=10, seed=3).val.movies)  # fixed, whatever the seed


def test_whole_movie_indices_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="Cannot hold out 10"):
        data.whole_movie_indices(np.array([0, 1] * 5), np.arange(10), 10, seed=0)


def test_missing_urls_file_says_what_to_do(isolated_data_dir: Path) -> None:
    _write(isolated_data_dir, make_archive(urls=False))
    with pytest.raises(DatasetError, match=r"urls_neg\.txt is missing.*extract it again"):
        data.load_imdb()


def test_cache_of_an_older_format_is_rebuilt(isolated_data_dir: Path) -> None:
    _write(isolated_data_dir, make_archive())
    data.load_imdb()
    cache = isolated_data_dir / data.CACHE_NAME
    old = data._read_cache(cache)
    old["format"] = data.CACHE_FORMAT - 1
    del old["train_movies"]  # what a format-1 cache lacked
    data._write_atomic_pickle(old, cache)
    assert len(data.load_imdb().val.movies) == 2
    assert data._read_cache(cache)["format"] == data.CACHE_FORMAT
