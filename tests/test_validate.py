"""The learner mistakes of issue #29, one by one: each gets a clear error naming the argument, or its obvious meaning."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import bert, data, embeddings, lm, plots, sequences, validate


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _counts(fig) -> list[int]:
    return [int(t.get_text().split("\n")[0].replace(",", "")) for t in fig.axes[0].texts]


def test_confusion_matrix_reads_keras_columns_and_refuses_probabilities_and_signs() -> None:
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.2], [0.9], [0.4], [0.1]])  # model.predict(x): shape (n, 1)
    assert _counts(plots.confusion_matrix(y, probs >= 0.5)) == [2, 0, 1, 1]  # n reviews, not n**2
    assert _counts(plots.confusion_matrix(y.reshape(-1, 1).tolist(), [0, 1, 0, 0])) == [2, 0, 1, 1]
    with pytest.raises(ValueError, match="y_pred holds fractions.*probabilities.*>= 0.5"):
        plots.confusion_matrix(y, probs)
    with pytest.raises(ValueError, match=r"y_true must hold class numbers 0 to 1.*\(y > 0\)"):
        plots.confusion_matrix([-1, 1, 1, -1], [0, 1, 1, 0])
    with pytest.raises(ValueError, match="y_true has 4 items but y_pred has 3"):
        plots.confusion_matrix(y, [0, 1, 1])


class _Tok:
    cls_token_id, sep_token_id = 101, 102

    def __call__(self, texts, **_):
        return {"input_ids": [[7] * len(t.split()) for t in texts]}


def test_a_string_is_never_read_as_a_list_of_texts(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.WORK_DIR_ENV, str(tmp_path))
    wv = embeddings.keyed_vectors(["good", "bad"], np.eye(2, dtype=np.float32))
    calls = [lambda: bert.encode(_Tok(), "a good film", 16, 4), lambda: lm.train_bpe("a good film", 300, "x"),
             lambda: embeddings.mean_vectors(wv, "a good film"), lambda: embeddings.token_ids("good", wv.key_to_index),
             lambda: lm.tfidf_judge("ab", [0, 1])]
    for call in calls:
        with pytest.raises(TypeError, match="must be a list of texts.*got a single string"):
            call()
    with pytest.raises(TypeError, match="lengths must be numbers.*pass \\[len"):
        bert.length_batches(["b text", "a text"], 2)
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        embeddings.mean_vectors(wv, ["good", 3])


def test_log_probabilities_and_counts_are_not_confused_with_losses_and_rates() -> None:
    with pytest.raises(ValueError, match="losses.*pass -losses"):
        lm.perplexity([1.0, 2.0])
    assert lm.perplexity(-np.array([1.0, 2.0])) == pytest.approx(np.exp(1.5))
    assert lm.perplexity(np.array([[-1.0], [-2.0]])) == pytest.approx(np.exp(1.5))
    assert lm.perplexity([-1e6]) == float("inf")
    with pytest.raises(TypeError, match="successes must be a whole number.*round\\(r \\* n\\)"):
        lm.wilson_interval(0.8, 1)
    with pytest.raises(ValueError, match="alpha must be at least"):
        lm.unigram_logprobs([0, 1], [0], 2, alpha=0)
    with pytest.raises(ValueError, match="targets must be ids from 0 to vocab_size - 1 = 1"):
        lm.unigram_logprobs([0, 1], [2], 2)


def test_sizes_must_be_positive() -> None:
    seqs, labels = [np.array([1, 2]), np.array([3])], np.array([0, 1])
    for call, name in [(lambda: sequences.bucket_batches(seqs, labels, -1), "batch_size"),
                       (lambda: sequences.bucket_batches(seqs, labels, 2, step=0), "step"),
                       (lambda: bert.length_batches([3, 1], -1), "batch_size"),
                       (lambda: bert.length_batches([3, 1], 2.0), "batch_size"),
                       (lambda: lm.sequential_windows(np.arange(9), np.zeros(9), 0), "context"),
                       (lambda: bert.pad_batch([[1]], multiple_of=0), "multiple_of"),
                       (lambda: sequences.keep_last(seqs, True), "max_len")]:
        with pytest.raises((TypeError, ValueError), match=name):
            call()
    with pytest.raises(ValueError, match="n_unsup must be at least 0"):
        data.load_imdb(n_unsup=-5)  # refused before any data is read


def test_a_huge_window_is_cut_to_the_longest_document() -> None:
    docs = [np.array([0, 1, 2])]
    start = time.perf_counter()
    wide = embeddings.cooccurrence_matrix(docs, 3, window=10**6)
    assert time.perf_counter() - start < 2
    assert np.allclose(wide.toarray(), embeddings.cooccurrence_matrix(docs, 3, window=2).toarray())
    with pytest.raises(ValueError, match="docs hold ids up to 3, but vocab_size is 3"):
        embeddings.cooccurrence_matrix([np.array([0, 3])], 3)


def test_vectors_stay_in_the_work_dir_and_a_model_is_not_its_vectors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.WORK_DIR_ENV, str(tmp_path / "work"))
    wv = embeddings.keyed_vectors(["good", "bad"], np.eye(2, dtype=np.float32))
    for name in ("../../x", "a/b", ".hidden", "", "/tmp/abs"):
        with pytest.raises(ValueError, match="plain folder name"):
            embeddings.save_vectors(wv, name)

    class Word2Vec:
        wv = None

    with pytest.raises(TypeError, match="pass its vectors: model.wv"):
        embeddings.save_vectors(Word2Vec(), "ok")
    assert not any(tmp_path.rglob("*.npz"))


def test_validators_name_the_argument_and_what_came() -> None:
    with pytest.raises(TypeError, match="k must be a whole number.*got float 2.5"):
        validate.integer(2.5, "k")
    with pytest.raises(ValueError, match="probs must be probabilities between 0 and 1.*logits"):
        validate.probabilities([0.5, 3.0], "probs")
    with pytest.raises(ValueError, match="seqs must be a list of sequences.*pass \\[seqs\\]"):
        validate.id_sequences(np.array([1, 2, 3]), "seqs")
    assert validate.class_labels(np.array([[True], [False]]), "y").tolist() == [1, 0]
