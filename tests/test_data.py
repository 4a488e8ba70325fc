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


def _files(folder: Path) -> list[str]:
    """What is in a folder, lock files aside (they stay, empty, beside what they protect)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


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


def test_data_and_work_dir_overrides_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "shared"))
    monkeypatch.setenv(data.WORK_DIR_ENV, str(tmp_path / "mine"))
    assert data.data_dir() == (tmp_path / "shared").resolve()
    assert data.work_dir() == (tmp_path / "mine").resolve() and (tmp_path / "mine").is_dir()
    monkeypatch.delenv(data.DATA_DIR_ENV)
    monkeypatch.delenv(data.WORK_DIR_ENV)
    repo = tmp_path / "repo"
    (repo / "helpers").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    assert data.data_dir() == repo / "data" == data.work_dir()  # one folder, the clone's data/, by default


def test_outputs_never_go_to_the_shared_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 isolated_data_dir: Path, isolated_work_dir: Path) -> None:
    assert data.work_dir() == isolated_work_dir != data.data_dir()  # even though the data dir is writable
    monkeypatch.delenv(data.WORK_DIR_ENV)
    assert data.work_dir() == Path.cwd() / "data"  # outside a clone: the current folder's data/, never DLNLP_DATA_DIR


def test_unwritable_work_dir_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "_is_writable", lambda folder: False)
    with pytest.raises(DatasetError, match="work directory .* not writable.*DLNLP_WORK_DIR"):
        data.work_dir()


def test_build_dir_is_the_data_dir_when_writable_else_the_work_dir(monkeypatch: pytest.MonkeyPatch,
                                                                   isolated_data_dir: Path,
                                                                   isolated_work_dir: Path) -> None:
    assert data.build_dir() == isolated_data_dir  # a teacher's prefetch fills the shared folder
    real = data._is_writable
    monkeypatch.setattr(data, "_is_writable", lambda folder: folder != isolated_data_dir and real(folder))
    assert data.build_dir() == isolated_work_dir  # a learner facing a read-only copy builds in their own folder


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
    with pytest.raises(DatasetError, match=r"broke off at 100 .*Gave up after \d+ attempts.*kept in .*a\.tar\.gz\.part"):
        data.download(http_server.url("/short"), dest, sha256(payload), len(payload) if size_known else None)
    # dest is never half-written; the one partial file, under a fixed name, is kept for the next run to resume
    assert not dest.exists() and _leftovers(isolated_data_dir) == ["a.tar.gz.part"]
    assert (isolated_data_dir / "a.tar.gz.part").read_bytes() == payload[:100]


def test_download_too_long_body_is_the_wrong_file(http_server: Server, isolated_data_dir: Path) -> None:
    payload = make_archive()
    http_server.routes["/long"] = (200, payload + b"extra", {})
    with pytest.raises(DatasetError, match="incomplete or the wrong file: the server offers"):
        data.download(http_server.url("/long"), isolated_data_dir / "a.tar.gz", sha256(payload), len(payload))
    assert _files(isolated_data_dir) == []


@pytest.mark.parametrize("status", [404, 500])
def test_download_http_errors(http_server: Server, isolated_data_dir: Path, status: int) -> None:
    http_server.routes["/err"] = (status, b"nope", {})
    with pytest.raises(DatasetError, match=f"HTTP {status}.*put the file"):
        data.download(http_server.url("/err"), isolated_data_dir / "a.tar.gz", "0" * 64)
    assert _files(isolated_data_dir) == []
    assert http_server.hits["/err"] == (1 if status == 404 else 1 + len(data.RETRY_DELAYS))  # 5xx are retried


def test_download_connection_refused_says_how_to_work_offline(refused_url: str, isolated_data_dir: Path) -> None:
    with pytest.raises(DatasetError, match="offline.*put the file.*DLNLP_DATA_DIR"):
        data.download(refused_url, isolated_data_dir / "a.tar.gz", "0" * 64)
    assert _files(isolated_data_dir) == []


def test_download_slow_server_times_out(http_server: Server, isolated_data_dir: Path) -> None:
    http_server.routes["/slow"] = (200, b"late", {"delay": 3})
    with pytest.raises(DatasetError, match="timed out after 0.5 s.*Gave up after 2 attempts"):
        data.download(http_server.url("/slow"), isolated_data_dir / "a.tar.gz", sha256(b"late"), timeout=0.5, retries=1)
    assert _files(isolated_data_dir) == []


def test_failed_download_keeps_existing_file(http_server: Server, isolated_data_dir: Path) -> None:
    old, new = make_archive(), make_archive(reviews_per_movie=2)
    dest = isolated_data_dir / "a.tar.gz"
    dest.write_bytes(old)
    http_server.routes["/bad"] = (200, b"garbage", {})
    with pytest.raises(DatasetError, match="Checksum mismatch"):
        data.download(http_server.url("/bad"), dest, sha256(new))
    assert dest.read_bytes() == old


def test_download_skips_a_file_that_is_already_there(http_server: Server, isolated_data_dir: Path) -> None:
    payload = make_archive()
    dest = isolated_data_dir / "a.tar.gz"
    dest.write_bytes(payload)  # e.g. another process finished it while this one waited for the lock
    assert data.download(http_server.url("/never-asked"), dest, sha256(payload), len(payload)) == dest
    assert http_server.hits == {}


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
    assert (isolated_data_dir / data.CACHE_NAME).exists() and not (isolated_data_dir / "aclImdb").exists()
    assert (isolated_data_dir / data.CACHE_NAME).stat().st_mode & 0o044 == 0o044
    assert (len(first.train), len(first.val), len(first.test), len(first.test_subset), len(first.unsup)) == (4, 2, 8, 4, 2)
    assert all("<br" not in t and "&quot;" not in t for t in first.train.texts + first.test.texts)
    # the cache alone serves the data: no second download, even with the archive gone
    os.remove(isolated_data_dir / data.ARCHIVE_NAME)
    second = data.load_imdb()
    assert http_server.hits == {"/imdb.tar.gz": 1}
    assert second.test.texts == first.test.texts


def test_load_reads_archive_supplied_by_hand_without_extracting(isolated_data_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    _write(isolated_data_dir, make_archive())
    imdb = data.load_imdb()
    assert len(imdb.test) == 8
    assert "nothing is extracted" in capsys.readouterr().out
    assert _files(isolated_data_dir) == [data.ARCHIVE_NAME, data.CACHE_NAME]


def test_archive_and_folder_parse_to_the_same_dataset(isolated_data_dir: Path) -> None:
    archive = _write(isolated_data_dir, make_archive(reviews_per_movie=2))
    from_archive = data.parse_archive(archive)
    from_folder = data.parse(data.extract(archive, isolated_data_dir))
    assert from_archive.keys() == from_folder.keys()
    for key, value in from_archive.items():
        assert np.array_equal(value, from_folder[key]) if isinstance(value, np.ndarray) else value == from_folder[key]
    assert from_archive["train_texts"][0] == "train/neg review 0 It was \"fine\"."


def test_archive_members_outside_the_layout_are_never_written_or_read(isolated_data_dir: Path, tmp_path: Path) -> None:
    evil = [tarfile.TarInfo(name) for name in ("aclImdb/../../escaped.txt", "/tmp/dlnlp-escaped.txt",
                                                "aclImdb/train/pos/99_1.txt/../../../../x.txt")]
    for member in evil:
        member.size = 1
    link = tarfile.TarInfo("aclImdb/train/pos/100_9.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = _write(isolated_data_dir, make_archive(extra=[*evil, link]))
    raw = data.parse_archive(archive)
    assert len(raw["train_texts"]) == 6 and not any("root:" in t for t in raw["train_texts"])
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/dlnlp-escaped.txt").exists()
    assert _files(isolated_data_dir) == [data.ARCHIVE_NAME]


def test_truncated_or_foreign_archive_says_what_to_do(isolated_data_dir: Path) -> None:
    payload = make_archive()
    archive = _write(isolated_data_dir, payload[: len(payload) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt.*download it again"):
        data.load_imdb()
    _write(isolated_data_dir, make_archive({**SMALL_COUNTS, "test/pos": 1}))
    with pytest.raises(DatasetError, match=rf"{archive} does not have the layout.*test/pos: 1 \(expected 4\)"):
        data.load_imdb()
    assert _files(isolated_data_dir) == [data.ARCHIVE_NAME]


def test_load_uses_extracted_folder(isolated_data_dir: Path) -> None:
    data.extract(_write(isolated_data_dir, make_archive(), "copy.tar.gz"), isolated_data_dir)
    assert len(data.load_imdb().unsup) == 2


def test_load_offline_without_data_explains_manual_placement(monkeypatch: pytest.MonkeyPatch, refused_url: str) -> None:
    monkeypatch.setattr(data, "IMDB_URL", refused_url)
    with pytest.raises(DatasetError, match="put the file.*DLNLP_DATA_DIR"):
        data.load_imdb()


@pytest.mark.parametrize("content", [b"not a cache", b"PK\x03\x04 a broken zip", b"\x93NUMPY garbage"])
def test_corrupt_cache_is_rebuilt(isolated_data_dir: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    _write(isolated_data_dir, make_archive())
    (isolated_data_dir / data.CACHE_NAME).write_bytes(content)
    assert len(data.load_imdb().test) == 8
    assert "unreadable cache" in capsys.readouterr().out
    assert data.read_cache(isolated_data_dir / data.CACHE_NAME) is not None  # replaced by a good one


def test_cache_is_plain_arrays_and_round_trips(isolated_data_dir: Path) -> None:
    _write(isolated_data_dir, make_archive())
    raw = data.load_raw()
    cache = isolated_data_dir / data.CACHE_NAME
    with np.load(cache, allow_pickle=False) as npz:  # every array loads without pickle
        assert all(npz[name].dtype != object for name in npz.files) and int(npz["format"]) == data.CACHE_FORMAT
    again = data.read_cache(cache)
    for key in ("train_texts", "test_texts", "unsup_texts"):
        assert again[key] == raw[key]
    for key in ("train_labels", "test_labels", "train_movies", "test_movies"):
        assert np.array_equal(again[key], raw[key])


def test_pack_texts_round_trips_unicode_and_empty_strings() -> None:
    texts = ["", "café naïve", "日本語 🎬", "plain"]
    assert data.unpack_texts(*data.pack_texts(texts)) == texts
    assert data.unpack_texts(*data.pack_texts([])) == []
    buffer, offsets = data.pack_texts(texts)
    with pytest.raises(ValueError, match="offsets"):
        data.unpack_texts(buffer[:-1], offsets)


def _planted_pickle(marker: Path) -> bytes:
    import pickle

    class Evil:
        def __reduce__(self):  # what a planted cache does: run a command when unpickled
            return (os.system, (f"touch {marker}",))

    return pickle.dumps({"format": 2, "payload": Evil()})


@pytest.mark.parametrize("name", ["imdb-cache-v2.pkl", data.CACHE_NAME])
def test_a_planted_pickle_cache_never_runs(isolated_data_dir: Path, tmp_path: Path, name: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    (isolated_data_dir / name).write_bytes(_planted_pickle(marker))
    _write(isolated_data_dir, make_archive())
    assert len(data.load_imdb().test) == 8
    assert not marker.exists()
    out = capsys.readouterr().out
    assert ("never opened" if name.endswith(".pkl") else "unreadable cache") in out
    assert len([line for line in out.splitlines() if "Ignoring" in line]) == 1  # a one-line note


def test_read_only_shared_copy_writes_to_own_folder(monkeypatch: pytest.MonkeyPatch, isolated_work_dir: Path,
                                                    isolated_data_dir: Path) -> None:
    _write(isolated_data_dir, make_archive())
    real = data._is_writable
    monkeypatch.setattr(data, "_is_writable", lambda folder: folder != isolated_data_dir and real(folder))
    assert len(data.load_imdb().test) == 8
    assert _files(isolated_work_dir) == [data.CACHE_NAME]
    assert _files(isolated_data_dir) == [data.ARCHIVE_NAME]  # nothing written into the shared folder
    assert len(data.load_imdb().test) == 8  # and the learner's own cache serves the next load


def test_teacher_prefetch_fills_the_shared_folder_and_learners_only_read_it(
        monkeypatch: pytest.MonkeyPatch, isolated_data_dir: Path, isolated_work_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _write(isolated_data_dir, make_archive())
    data.prefetch()  # the teacher: DLNLP_DATA_DIR=/srv/course/imdb python -m helpers prefetch
    assert (isolated_data_dir / data.CACHE_NAME).exists() and not (isolated_work_dir / data.CACHE_NAME).exists()
    assert "outputs go to" in capsys.readouterr().out
    before = {p: p.stat().st_mtime_ns for p in isolated_data_dir.rglob("*")}
    real = data._is_writable  # a learner: the shared folder is read-only for them
    monkeypatch.setattr(data, "_is_writable", lambda folder: folder != isolated_data_dir and real(folder))
    assert len(data.load_imdb().test) == 8
    assert {p: p.stat().st_mtime_ns for p in isolated_data_dir.rglob("*")} == before
    assert list(isolated_work_dir.iterdir()) == []  # the shared cache served everything


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
    with pytest.raises(DatasetError, match=r"urls_neg\.txt in .* is missing.*download the official archive"):
        data.load_imdb()
    data.extract(_write(isolated_data_dir, make_archive(urls=False), "copy.tar.gz"), isolated_data_dir)
    with pytest.raises(DatasetError, match=r"aclImdb/train/urls_neg\.txt is missing.*Delete .*aclImdb"):
        data.load_imdb()


def test_cache_of_another_format_or_kind_is_rebuilt(isolated_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(isolated_data_dir, make_archive())
    cache = isolated_data_dir / data.CACHE_NAME
    data.write_npz(cache, {"format": np.array(data.CACHE_FORMAT - 1), "kind": np.array(data.CACHE_KIND)})
    assert len(data.load_imdb().val.movies) == 2
    assert f"format {data.CACHE_FORMAT - 1}" in capsys.readouterr().out
    data.write_npz(cache, {"format": np.array(data.CACHE_FORMAT), "kind": np.array("someone else's")})
    assert len(data.load_imdb().val.movies) == 2 and "someone else" in capsys.readouterr().out
    assert data.read_cache(cache) is not None


def test_cache_with_mismatched_arrays_is_rebuilt(isolated_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(isolated_data_dir, make_archive())
    cache = isolated_data_dir / data.CACHE_NAME
    raw = data.load_raw()
    raw["test_labels"] = raw["test_labels"][:-1]  # one label short
    data.write_cache(raw, cache)
    assert data.read_cache(cache) is None and "unreadable cache" in capsys.readouterr().out
    assert len(data.load_imdb().test) == 8


def test_disk_full_while_caching_or_extracting_says_how_much_and_where(
        monkeypatch: pytest.MonkeyPatch, isolated_data_dir: Path) -> None:
    import errno

    archive = _write(isolated_data_dir, make_archive())

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data.np, "savez", full)
    with pytest.raises(DatasetError, match=f"Not enough disk space in {isolated_data_dir} for the parsed dataset cache"):
        data.load_imdb()
    assert _leftovers(isolated_data_dir) == [] and not (isolated_data_dir / data.CACHE_NAME).exists()
    monkeypatch.setattr(data.tarfile.TarFile, "extractall", full)
    target = isolated_data_dir / "elsewhere"
    target.mkdir()
    with pytest.raises(DatasetError, match=rf"Not enough disk space in {target} for extracting .*about 500 MB"):
        data.extract(archive, target)
    assert list(target.iterdir()) == []


def test_cache_holds_the_validation_split_for_its_settings(monkeypatch: pytest.MonkeyPatch,
                                                           isolated_data_dir: Path) -> None:
    counts = {**SMALL_COUNTS, "train/pos": 30, "train/neg": 30}
    monkeypatch.setattr(data, "EXPECTED_COUNTS", counts)
    monkeypatch.setattr(data, "VALIDATION_SIZE", 12)
    _write(isolated_data_dir, make_archive(counts, reviews_per_movie=3))
    first = data.load_imdb()
    raw = data.read_cache(isolated_data_dir / data.CACHE_NAME)
    fresh = data.whole_movie_indices(raw["train_labels"], raw["train_movies"], 12, data.SPLIT_SEED)
    assert np.array_equal(raw["val_index"], fresh)  # stored once, so later loads skip the seconds it takes
    real = data.whole_movie_indices
    monkeypatch.setattr(data, "whole_movie_indices", lambda *a: pytest.fail("should come from the cache"))
    assert data.load_imdb().val.texts == first.val.texts
    monkeypatch.setattr(data, "whole_movie_indices", real)
    monkeypatch.setattr(data, "VALIDATION_SIZE", 20)  # other settings: computed again, not taken from the cache
    assert len(data.load_imdb().val) != len(first.val)
