"""Token-id sequences for recurrent models: keep-the-end truncation, length buckets, pretrained embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from . import validate as check

UNK = 1  # TextVectorization's id for a word outside the vocabulary (0 is padding)


@dataclass(frozen=True)
class Batch:
    """One padded batch: token ids ``x`` (zeros on the right), labels ``y`` and the rows' original indices."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray


def keep_last(seqs: Sequence[Sequence[int]], max_len: int) -> list[np.ndarray]:
    """The last ``max_len`` ids of every sequence (a review's ending often states its verdict)."""
    max_len = check.integer(max_len, "max_len", 1)
    return [s.astype(np.int32)[-max_len:] for s in check.id_sequences(seqs, "seqs")]


def bucket_batches(seqs: Sequence[np.ndarray], labels: np.ndarray, batch_size: int, step: int = 8) -> list[Batch]:
    """Batches of similar-length sequences, right-padded with 0 to the batch's longest, rounded up to ``step``.

    Right padding is what cuDNN's LSTM and GRU accept with a mask (Keras uses them on a GPU); an empty sequence becomes
    one [UNK] (id 1), since cuDNN also refuses a row that is all padding.
    """
    seqs, labels = check.id_sequences(seqs, "seqs"), check.array(labels, "labels")
    check.same_length(seqs=seqs, labels=labels)
    batch_size, step = check.integer(batch_size, "batch_size", 1), check.integer(step, "step", 1)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = step * max(1, -(-max(len(seqs[i]) for i in index) // step))
        x = np.zeros((len(index), width), dtype=np.int32)
        for row, i in enumerate(index):
            x[row, :max(1, len(seqs[i]))] = seqs[i] if len(seqs[i]) else UNK
        batches.append(Batch(x, labels[index].astype(np.float32), index))
    return batches


def embedding_matrix(vocabulary: Sequence[str], wv: Any, seed: int = 0) -> tuple[np.ndarray, float]:
    """Rows of ``wv`` (gensim KeyedVectors) for a vocabulary, small random rows for missing words, 0 for padding.

    Returns the matrix and the share of the vocabulary (padding and [UNK] excluded) found in ``wv``.
    """
    vocabulary, wv = check.words(vocabulary, "vocabulary"), check.keyed_vectors(wv)
    seed = check.integer(seed, "seed", 0)
    scale = float(np.std(wv.vectors))
    matrix = np.random.default_rng(seed).normal(0.0, scale, (len(vocabulary), wv.vector_size)).astype(np.float32)
    found = 0
    for i, word in enumerate(vocabulary):
        if word in wv.key_to_index:
            matrix[i] = wv[word]
            found += i >= 2
    matrix[0] = 0.0  # index 0 is padding (masked)
    return matrix, found / max(1, len(vocabulary) - 2)


def most_confident_errors(probs: np.ndarray, labels: np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the ``k`` wrong predictions with the highest confidence, most confident first."""
    probs, labels = check.probabilities(probs, "probs"), check.class_labels(labels, "labels")
    check.same_length(probs=probs, labels=labels)
    k = check.integer(k, "k", 0)
    wrong = np.flatnonzero((probs >= 0.5) != (labels == 1))
    confidence = np.abs(probs[wrong] - 0.5)
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


@keras.saving.register_keras_serializable(package="dlnlp")
class KeepLastTokens(keras.layers.Layer):
    """Keep each row's last ``max_len`` non-zero ids, right-padded with 0: ``keep_last`` inside a model.

    Rows are expected as ``TextVectorization`` writes them (ids first, then zeros); a row with no id becomes one [UNK],
    because cuDNN's recurrent layers refuse a row of padding only.
    """

    def __init__(self, max_len: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_len = check.integer(max_len, "max_len", 1)

    def call(self, ids):
        ops = keras.ops
        lengths = ops.sum(ops.cast(ops.not_equal(ids, 0), "int32"), axis=1, keepdims=True)
        steps = ops.arange(self.max_len, dtype="int32")[None, :]
        positions = ops.maximum(lengths - self.max_len, 0) + steps  # the last max_len ids, from the first
        width = ops.shape(ids)[1]
        gathered = ops.take_along_axis(ids, ops.clip(positions, 0, ops.maximum(width - 1, 0)), axis=1)
        kept = ops.where(steps < lengths, gathered, ops.zeros_like(gathered))
        empty = ops.logical_and(lengths == 0, steps == 0)  # a row with no id: one [UNK]
        return ops.where(empty, ops.full_like(kept, UNK), kept)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_len)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_len": self.max_len}
