"""Unit tests for notebook 04's evaluation helpers in helpers.lm: sliding windows, bits per byte, trigram, bigram table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import lm

CORPUS = [f"the movie was {w} and the actors were {v}" for w in ("great", "awful", "fine", "boring")
          for v in ("superb", "bad", "good", "wooden")] * 5


@pytest.fixture
def tok(tmp_path, monkeypatch):
    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("DLNLP_DATA_DIR", str(tmp_path / "work"))
    return lm.train_bpe(CORPUS, 300, "tiny", verbose=False)


def test_sliding_windows_score_every_target_once_with_long_context() -> None:
    tokens = np.arange(100, dtype=np.int32)
    conds = np.zeros(100, dtype=np.int8)
    x, y, c, score = lm.sliding_windows(tokens, conds, context=16, stride=4)
    assert x.shape == y.shape == c.shape == score.shape and x.shape[1] == 16
    assert np.array_equal(x[:, 1:], y[:, :-1]) and np.array_equal(y, x + 1)
    scored = y[score]
    assert len(np.unique(scored)) == len(scored)  # nobody twice
    assert np.array_equal(np.sort(scored), np.arange(1, scored.max() + 1))  # a contiguous prefix, nothing skipped
    positions = np.nonzero(score)[1]
    assert positions[16:].min() == 12  # after the first window: at least context - stride tokens before each target


def test_sliding_windows_with_stride_context_is_sequential() -> None:
    tokens, conds = np.arange(50, dtype=np.int32), np.zeros(50, dtype=np.int8)
    x, y, _, score = lm.sliding_windows(tokens, conds, 8, 8)
    xs, ys, _ = lm.sequential_windows(tokens, conds, 8)
    assert np.array_equal(x, xs) and np.array_equal(y, ys) and score.all()


@pytest.mark.parametrize("kwargs, message", [({"stride": 0}, "stride"), ({"stride": 9}, "stride"),
                                             ({"context": 60, "stride": 4}, "too short")])
def test_sliding_windows_reject_bad_input(kwargs, message) -> None:
    args = {"context": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        lm.sliding_windows(np.arange(50), np.zeros(50), **args)


def test_token_bytes_add_up_to_the_text(tok) -> None:
    sizes = lm.token_bytes(tok)
    assert sizes[: len(lm.SPECIAL_TOKENS)].sum() == 0 and sizes[5:].min() >= 1
    for text in ("the actors were superb", "ünïcode, émojis 🎬 too"):
        ids = tok.encode(text).ids
        assert sizes[ids].sum() == len((" " + text).encode("utf-8"))  # the byte-level pre-tokenizer adds one space


def test_bits_per_byte() -> None:
    assert lm.bits_per_byte(math.log(2) * 80, 10) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="n_bytes"):
        lm.bits_per_byte(1.0, 0)
    with pytest.raises(ValueError, match="nats"):
        lm.bits_per_byte(float("nan"), 3)


def test_trigram_is_a_distribution_and_uses_two_tokens() -> None:
    rng = np.random.default_rng(0)
    V = 12
    train = np.tile([1, 2, 3, 4, 2, 5], 200)  # after (1, 2) comes 3, after (4, 2) comes 5: the bigram cannot tell
    train = np.concatenate([train, rng.integers(0, V, 300)])
    for u, v in [(1, 2), (4, 2), (7, 8)]:
        total = np.exp(lm.trigram_logprobs(train, np.full(V, u), np.full(V, v), np.arange(V), V)).sum()
        assert total == pytest.approx(1.0)
    tri = lm.trigram_logprobs(train, np.array([1, 4]), np.array([2, 2]), np.array([3, 5]), V)
    bi = lm.bigram_logprobs(train, np.array([2, 2]), np.array([3, 5]), V)
    assert (tri > bi).all() and (np.exp(tri) > 0.9).all()
    with pytest.raises(ValueError, match="one shape"):
        lm.trigram_logprobs(train, np.array([1]), np.array([1, 2]), np.array([1, 2]), V)


def test_bigram_matrix_matches_bigram_logprobs() -> None:
    rng = np.random.default_rng(1)
    V = 9
    train = rng.integers(0, V - 1, 500)  # the last id is never seen: its row falls back to the unigram
    table = lm.bigram_matrix(train, V)
    assert table.shape == (V, V) and table.dtype == np.float32
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-5)
    prev, nxt = np.repeat(np.arange(V), V), np.tile(np.arange(V), V)
    np.testing.assert_allclose(np.log(table[prev, nxt]), lm.bigram_logprobs(train, prev, nxt, V), rtol=1e-5)
    with pytest.raises(ValueError, match="train_tokens"):
        lm.bigram_matrix(np.array([0, V]), V)
