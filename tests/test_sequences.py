"""Tests for helpers.sequences: truncation, length buckets, embedding matrices, error ranking, the layer."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.sequences import (
    KeepLastTokens,
    bucket_batches,
    embedding_matrix,
    keep_last,
    most_confident_errors,
)


class FakeVectors:
    """The slice of gensim KeyedVectors that embedding_matrix uses."""

    def __init__(self, table: dict[str, list[float]]):
        self.key_to_index = {w: i for i, w in enumerate(table)}
        self.vectors = np.array(list(table.values()), dtype=np.float32)
        self.vector_size = self.vectors.shape[1]

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.key_to_index[word]]


def test_keep_last_keeps_the_end():
    out = keep_last([[1, 2, 3, 4], [5], []], 2)
    assert [o.tolist() for o in out] == [[3, 4], [5], []]
    with pytest.raises(ValueError):
        keep_last([[1]], 0)


def test_bucket_batches_pads_right_and_covers_every_row_once():
    seqs = [np.arange(1, n + 1) for n in (5, 1, 40, 3, 33)]
    labels = np.array([0, 1, 0, 1, 1])
    batches = bucket_batches(seqs, labels, batch_size=2, step=8)
    assert sorted(np.concatenate([b.index for b in batches]).tolist()) == [0, 1, 2, 3, 4]
    for b in batches:
        assert b.x.shape[1] % 8 == 0 and b.x.shape[0] == len(b.y) == len(b.index)
        for row, i in zip(b.x, b.index, strict=True):
            assert row[: len(seqs[i])].tolist() == seqs[i].tolist() and not row[len(seqs[i]):].any()
            assert b.y[list(b.index).index(i)] == labels[i]
    assert [b.x.shape[1] for b in batches] == [8, 40, 40]  # sorted by length: short batches stay short
    with pytest.raises(ValueError):
        bucket_batches(seqs, labels[:2], 2)


def _cudnn_accepts(ids: np.ndarray) -> bool:
    """Keras's own check before it runs an LSTM or GRU with cuDNN (on a GPU): right-padded, no row all padding."""
    import keras
    import tensorflow as tf
    from keras.src.backend.tensorflow.rnn import _has_fully_masked_sequence, _is_sequence_right_padded

    mask = tf.convert_to_tensor(keras.layers.Embedding(50, 4, mask_zero=True).compute_mask(ids))
    return bool(_is_sequence_right_padded(mask)) and not bool(_has_fully_masked_sequence(mask))


def test_batches_and_the_layer_pass_kerass_cudnn_mask_check():
    seqs = [np.arange(1, n + 1) for n in (5, 1, 17, 3, 0, 9)]
    batches = bucket_batches(seqs, np.zeros(len(seqs)), batch_size=4)
    assert all(_cudnn_accepts(b.x) for b in batches)
    empty = next(b for b in batches if 4 in b.index)  # the empty sequence reads as one [UNK]
    assert empty.x[list(empty.index).index(4)].tolist()[:2] == [1, 0]
    ids = np.array([[4, 5, 6, 7, 0, 0], [8, 0, 0, 0, 0, 0], [0] * 6], dtype=np.int64)
    assert _cudnn_accepts(np.asarray(KeepLastTokens(3)(ids)))
    assert not _cudnn_accepts(np.array([[0, 0, 3, 4], [5, 6, 7, 8]]))  # left padding, as before: refused
    assert not _cudnn_accepts(np.array([[0, 0, 0, 0], [5, 6, 7, 8]]))  # a row of padding only: refused


def test_embedding_matrix_copies_known_words_and_zeroes_padding():
    wv = FakeVectors({"good": [1.0, 2.0], "bad": [-1.0, -2.0]})
    matrix, coverage = embedding_matrix(["", "[UNK]", "good", "bad", "zzz"], wv, seed=1)
    assert matrix.shape == (5, 2) and matrix.dtype == np.float32
    assert not matrix[0].any()
    assert matrix[2].tolist() == [1.0, 2.0] and matrix[3].tolist() == [-1.0, -2.0]
    assert coverage == pytest.approx(2 / 3)
    again, _ = embedding_matrix(["", "[UNK]", "good", "bad", "zzz"], wv, seed=1)
    assert np.array_equal(matrix, again)


def test_most_confident_errors_ranks_by_confidence():
    probs = np.array([0.9, 0.2, 0.01, 0.6, 0.45, 0.99])
    labels = np.array([1, 0, 1, 0, 1, 1])
    assert most_confident_errors(probs, labels, k=5).tolist() == [2, 3, 4]
    assert most_confident_errors(probs, labels, k=1).tolist() == [2]


def test_keep_last_tokens_layer_matches_numpy_and_round_trips_config():
    ids = np.array([[4, 5, 6, 7, 0, 0], [8, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]], dtype=np.int64)
    layer = KeepLastTokens(3)
    out = np.asarray(layer(ids))
    assert out.tolist() == [[5, 6, 7], [8, 0, 0], [4, 5, 6]]
    wide = np.asarray(KeepLastTokens(8)(ids))
    assert wide.tolist()[1] == [8] + [0] * 7 and wide.tolist()[0] == [4, 5, 6, 7, 0, 0, 0, 0]
    assert np.asarray(KeepLastTokens(3)(np.zeros((1, 4), dtype=np.int64))).tolist() == [[1, 0, 0]]  # empty: [UNK]
    assert KeepLastTokens.from_config(layer.get_config()).max_len == 3
