"""Unit tests for helpers.lm: the cached BPE tokenizer, token streams and windows, count baselines, the judge."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers import lm

CORPUS = [f"the movie was {w} and the actors were {v}" for w in ("great", "awful", "fine", "boring")
          for v in ("superb", "bad", "good", "wooden")] * 5


@pytest.fixture
def work(tmp_path, monkeypatch):
    folder = tmp_path / "work"
    monkeypatch.setenv("DLNLP_WORK_DIR", str(folder))
    monkeypatch.setenv("DLNLP_DATA_DIR", str(folder))  # older helpers put outputs beside the data
    return folder


def test_train_bpe_has_special_tokens_and_round_trips(work) -> None:
    tok = lm.train_bpe(CORPUS, 300, "tiny")
    assert [tok.token_to_id(t) for t in lm.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tok.get_vocab_size() <= 300
    text = "the actors were superb, ünïcode too!"  # byte-level: nothing is unknown
    assert tok.decode(tok.encode(text).ids).strip() == text
    assert lm.tokenizer_path("tiny").is_file() and lm.tokenizer_path("tiny").is_relative_to(work)


def test_train_bpe_reuses_the_cache_only_for_the_same_corpus(work, capsys) -> None:
    lm.train_bpe(CORPUS, 300, "tiny")
    capsys.readouterr()
    lm.train_bpe(CORPUS, 300, "tiny")
    assert "Loaded the cached tokenizer" in capsys.readouterr().out
    lm.train_bpe(CORPUS[:-1], 300, "tiny")  # another corpus: retrained, not silently reused
    assert "Trained" in capsys.readouterr().out
    meta = json.loads(lm.tokenizer_path("tiny").with_name("meta.json").read_text())
    assert meta["fingerprint"] == lm.corpus_fingerprint(CORPUS[:-1], 300)


def test_a_damaged_cache_is_rebuilt(work, capsys) -> None:
    lm.train_bpe(CORPUS, 300, "tiny")
    lm.tokenizer_path("tiny").write_text("{not json")
    tok = lm.train_bpe(CORPUS, 300, "tiny")
    assert "damaged" in capsys.readouterr().out and tok.token_to_id(lm.POS) == 2
    json.loads(lm.tokenizer_path("tiny").read_text())  # rewritten whole


@pytest.mark.parametrize("args, message", [((CORPUS, 100, "tiny"), "at least"), (([], 300, "tiny"), "non-empty"),
                                           ((CORPUS, 300, "../escape"), "plain folder name")])
def test_train_bpe_rejects_bad_input(work, args, message) -> None:
    with pytest.raises(ValueError, match=message):
        lm.train_bpe(*args)


def test_token_stream_frames_each_review(work) -> None:
    tok = lm.train_bpe(CORPUS, 300, "tiny")
    docs = lm.encode(tok, ["great movie", "bad", "hello"])
    tokens, conds = lm.token_stream(docs, [1, 0, -1], tok)
    pos, neg, unl, eor = (tok.token_to_id(t) for t in (lm.POS, lm.NEG, lm.UNL, lm.EOR))
    assert tokens[0] == pos and tokens[len(docs[0]) + 1] == eor and tokens[len(docs[0]) + 2] == neg
    assert tokens[-1] == eor and unl in tokens
    assert len(tokens) == len(conds) == sum(len(d) + 2 for d in docs)
    assert list(conds[: len(docs[0]) + 2]) == [lm.COND_INDEX[lm.POS]] * (len(docs[0]) + 2)
    assert conds[-1] == lm.COND_INDEX[lm.UNL]
    with pytest.raises(ValueError, match="labels"):
        lm.token_stream(docs, [1, 0], tok)
    with pytest.raises(ValueError, match="label must be"):
        lm.token_stream(docs, [1, 0, 2], tok)


def test_random_windows_are_shifted_by_one() -> None:
    tokens, conds = np.arange(100, dtype=np.int32), (np.arange(100) // 50).astype(np.int8)
    x, y, c = lm.random_windows(tokens, conds, 8, 5, np.random.default_rng(0))
    assert x.shape == y.shape == c.shape == (5, 8) and x.dtype == np.int64
    assert np.array_equal(y, x + 1) and np.array_equal(c, x // 50)
    x2, _, _ = lm.random_windows(tokens, conds, 8, 5, np.random.default_rng(0))
    assert np.array_equal(x, x2)  # seeded
    with pytest.raises(ValueError, match="longer than context"):
        lm.random_windows(tokens[:5], conds[:5], 8, 2, np.random.default_rng(0))


def test_sequential_windows_cover_the_stream_once() -> None:
    tokens, conds = np.arange(21), np.zeros(21, dtype=np.int8)
    x, y, c = lm.sequential_windows(tokens, conds, 5)
    assert x.shape == (4, 5) and np.array_equal(x.ravel(), np.arange(20)) and np.array_equal(y.ravel(), np.arange(1, 21))
    with pytest.raises(ValueError, match="too short"):
        lm.sequential_windows(tokens[:3], conds[:3], 5)


def test_unigram_is_add_one_smoothed_and_normalised() -> None:
    logp = lm.unigram_logprobs(np.array([0, 0, 1]), np.arange(3), 3)
    assert np.allclose(np.exp(logp), [3 / 6, 2 / 6, 1 / 6]) and math.isclose(np.exp(logp).sum(), 1)


def test_bigram_is_a_distribution_and_beats_the_unigram_on_patterns() -> None:
    rng = np.random.default_rng(0)
    train = np.tile([0, 1, 2, 3], 200)
    train[rng.integers(0, len(train), 50)] = 4  # some noise
    vocab = 6
    for v in range(vocab):  # p(. | v) sums to one for every context, seen or not
        probs = np.exp(lm.bigram_logprobs(train, np.full(vocab, v), np.arange(vocab), vocab))
        assert math.isclose(probs.sum(), 1.0, rel_tol=1e-9), v
    prev, targets = np.array([0, 1, 2, 3] * 10), np.array([1, 2, 3, 0] * 10)
    bigram = lm.perplexity(lm.bigram_logprobs(train, prev, targets, vocab))
    unigram = lm.perplexity(lm.unigram_logprobs(train, targets, vocab))
    assert bigram < 1.5 < 3.5 < unigram
    with pytest.raises(ValueError, match="discount"):
        lm.bigram_logprobs(train, prev, targets, vocab, discount=1.5)
    with pytest.raises(ValueError, match="same shape"):
        lm.bigram_logprobs(train, prev[:3], targets, vocab)


def test_perplexity() -> None:
    assert math.isclose(lm.perplexity(np.log(np.full(10, 0.25))), 4.0)
    with pytest.raises(ValueError):
        lm.perplexity(np.array([]))


def test_tfidf_judge_learns_sentiment_words() -> None:
    texts = [f"a {w} film, truly {w}" for w in ("great", "wonderful", "superb")] * 10
    texts += [f"an {w} film, truly {w}" for w in ("awful", "boring", "terrible")] * 10
    labels = [1] * 30 + [0] * 30
    judge = lm.tfidf_judge(texts, labels)
    assert list(judge.predict(["great and wonderful", "awful, boring"])) == [1, 0]
    with pytest.raises(ValueError, match="both classes"):
        lm.tfidf_judge(texts[:30], labels[:30])


def test_wilson_interval() -> None:
    low, high = lm.wilson_interval(60, 100)
    assert 0.50 < low < 0.51 and 0.69 < high < 0.70  # the textbook values 0.502, 0.691
    assert lm.wilson_interval(0, 10)[0] == 0.0 and lm.wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        lm.wilson_interval(5, 0)
