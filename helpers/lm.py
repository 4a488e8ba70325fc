"""Language-model helpers for notebook 04: a cached byte-level BPE tokenizer, token streams, count baselines, a judge."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import validate as check
from .data import publish, work_dir

PAD, EOR, POS, NEG, UNL = "<pad>", "<eor>", "<pos>", "<neg>", "<unl>"
SPECIAL_TOKENS = (PAD, EOR, POS, NEG, UNL)  # ids 0..4, in this order
CONDITIONS = {0: NEG, 1: POS, -1: UNL}  # review label (-1 = unlabelled) -> its control token
COND_INDEX = {NEG: 0, POS: 1, UNL: 2}  # control token -> index of its learned condition embedding
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # every byte plus the special tokens


def tokenizer_path(name: str) -> Path:
    """Where the tokenizer called ``name`` is cached: ``work_dir()/tokenizers/<name>/tokenizer.json``."""
    check.plain_name(name, "tokenizer name", "imdb-bpe-4096")
    return work_dir() / "tokenizers" / name / "tokenizer.json"


def corpus_fingerprint(texts: Sequence[str], vocab_size: int) -> str:
    """SHA-256 of the training texts and the vocabulary size: a cached tokenizer is reused only for the same corpus."""
    texts, vocab_size = check.texts(texts), check.integer(vocab_size, "vocab_size", 1)
    digest = hashlib.sha256(f"{vocab_size}|{len(texts)}|{'|'.join(SPECIAL_TOKENS)}".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def _write_atomic_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_cached(path: Path, fingerprint: str):
    from tokenizers import Tokenizer

    meta = path.with_name("meta.json")
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") != fingerprint:
            return None
        tokenizer = Tokenizer.from_file(str(path))
    except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
        print(f"The cached tokenizer in {path.parent} is damaged; training a new one.")
        return None
    if any(tokenizer.token_to_id(tok) != i for i, tok in enumerate(SPECIAL_TOKENS)):
        return None
    return tokenizer


def train_bpe(texts: Sequence[str], vocab_size: int, name: str, verbose: bool = True):
    """A byte-level BPE tokenizer with ``SPECIAL_TOKENS`` trained on ``texts``, cached under ``work_dir()`` by corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    vocab_size = check.integer(vocab_size, "vocab_size", MIN_VOCAB,
                               hint=f"It counts 256 bytes + {len(SPECIAL_TOKENS)} special tokens at least.")
    texts = check.texts(texts, allow_empty=False)  # e.g. imdb.train.texts + imdb.unsup
    path = tokenizer_path(name)
    fingerprint = corpus_fingerprint(texts, vocab_size)
    cached = _load_cached(path, fingerprint)
    if cached is not None:
        if verbose:
            print(f"Loaded the cached tokenizer {path}")
        return cached
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    _write_atomic_text(tokenizer.to_str(), path)  # the tokenizer first, then the fingerprint that vouches for it
    _write_atomic_text(json.dumps({"fingerprint": fingerprint, "vocab_size": vocab_size, "n_texts": len(texts)}),
                       path.with_name("meta.json"))
    if verbose:
        print(f"Trained a {tokenizer.get_vocab_size():,}-token BPE tokenizer on {len(texts):,} texts; saved {path}")
    return tokenizer


def encode(tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    """Token ids of each text (no special tokens), as int32 arrays; encoded in chunks to keep memory flat."""
    texts, out = check.texts(texts), []
    for i in range(0, len(texts), 2000):  # an Encoding object holds far more than its ids: keep few alive at once
        out += [np.asarray(e.ids, dtype=np.int32) for e in tokenizer.encode_batch_fast(texts[i : i + 2000],
                                                                                        add_special_tokens=False)]
    return out


def control_id(tokenizer, label: int) -> int:
    """The id of the control token for a review label: 1 -> ``<pos>``, 0 -> ``<neg>``, -1 (unlabelled) -> ``<unl>``."""
    if not check.is_integer(label) or label not in CONDITIONS:
        raise ValueError(f"label must be 1 (positive), 0 (negative) or -1 (unlabelled), got {label!r}")
    return int(tokenizer.token_to_id(CONDITIONS[label]))


def token_stream(docs: Sequence[np.ndarray], labels: Sequence[int], tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Join reviews as ``<control> review <eor>`` into one stream; return the tokens and each token's condition index."""
    docs = check.id_sequences(docs, "docs", allow_empty=False)
    labels = check.array(labels, "labels", integers=True)  # each one is checked by control_id
    check.same_length(docs=docs, labels=labels)
    eor = tokenizer.token_to_id(EOR)
    parts, conds = [], []
    for ids, label in zip(docs, labels, strict=True):
        label = int(label)
        parts.append(np.concatenate([[control_id(tokenizer, label)], np.asarray(ids, dtype=np.int32), [eor]]))
        conds.append(np.full(len(ids) + 2, COND_INDEX[CONDITIONS[label]], dtype=np.int8))
    return np.concatenate(parts).astype(np.int32), np.concatenate(conds)


def random_windows(tokens: np.ndarray, conds: np.ndarray, context: int, batch_size: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of random windows: inputs (batch, context), next-token targets and conditions, as int64 arrays."""
    tokens, conds = check.stream(tokens, conds)
    context, batch_size = check.integer(context, "context", 1), check.integer(batch_size, "batch_size", 1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator such as np.random.default_rng(0), got {check.describe(rng)}")
    if len(tokens) < context + 2:
        raise ValueError(f"need a stream longer than context + 1 ({context + 1}); got context {context} and "
                         f"{len(tokens)} tokens")
    starts = rng.integers(0, len(tokens) - context, size=batch_size)
    offsets = starts[:, None] + np.arange(context)[None, :]
    return tokens[offsets].astype(np.int64), tokens[offsets + 1].astype(np.int64), conds[offsets].astype(np.int64)


def sequential_windows(tokens: np.ndarray, conds: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stream cut into consecutive non-overlapping windows (the tail that does not fill one is dropped)."""
    tokens, conds = check.stream(tokens, conds)
    context = check.integer(context, "context", 1)
    n = (len(tokens) - 1) // context
    if n < 1:
        raise ValueError(f"the stream ({len(tokens)} tokens) is too short for one window of {context} + 1 tokens")
    x = tokens[: n * context].reshape(n, context)
    y = tokens[1 : n * context + 1].reshape(n, context)
    return x.astype(np.int64), y.astype(np.int64), conds[: n * context].reshape(n, context).astype(np.int64)


def unigram_logprobs(train_tokens: np.ndarray, targets: np.ndarray, vocab_size: int, alpha: float = 1.0) -> np.ndarray:
    """Natural-log probabilities of ``targets`` under an add-``alpha`` unigram model counted on ``train_tokens``."""
    vocab_size = check.integer(vocab_size, "vocab_size", 1)
    alpha = check.number(alpha, "alpha", 1e-12, hint="Add-alpha smoothing needs alpha > 0 (1.0 is add-one).")
    train_tokens = check.token_ids(train_tokens, "train_tokens", vocab_size, flat=True)
    counts = np.bincount(train_tokens, minlength=vocab_size).astype(np.float64)
    probs = (counts + alpha) / (counts.sum() + alpha * vocab_size)
    return np.log(probs[check.token_ids(targets, "targets", vocab_size)])


def bigram_logprobs(train_tokens: np.ndarray, prev: np.ndarray, targets: np.ndarray, vocab_size: int,
                    discount: float = 0.75) -> np.ndarray:
    """Log-probabilities of ``targets`` after ``prev`` under an interpolated absolute-discount bigram model.

    p(w | v) = max(c(v, w) - D, 0) / c(v) + D * N(v) / c(v) * p_uni(w), where N(v) is the number of distinct words
    seen after v and p_uni the add-one unigram; a never-seen v falls back to p_uni.
    """
    if not 0 < check.number(discount, "discount") < 1:
        raise ValueError(f"discount must be between 0 and 1 (exclusive), got {discount}")
    vocab_size = check.integer(vocab_size, "vocab_size", 1)
    train_tokens = check.token_ids(train_tokens, "train_tokens", vocab_size, flat=True)
    if len(train_tokens) < 2:
        raise ValueError(f"train_tokens must hold at least two tokens to count a bigram, got {len(train_tokens)}")
    prev, targets = check.token_ids(prev, "prev", vocab_size), check.token_ids(targets, "targets", vocab_size)
    if prev.shape != targets.shape:
        raise ValueError(f"prev {prev.shape} and targets {targets.shape} must have the same shape")
    p_uni = np.exp(unigram_logprobs(train_tokens, np.arange(vocab_size), vocab_size))
    keys, pair_counts = np.unique(train_tokens[:-1] * vocab_size + train_tokens[1:], return_counts=True)
    context_counts = np.bincount(keys // vocab_size, weights=pair_counts, minlength=vocab_size)
    distinct_next = np.bincount(keys // vocab_size, minlength=vocab_size)
    query = prev * vocab_size + targets
    pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    c_vw = np.where(keys[pos] == query, pair_counts[pos], 0).astype(np.float64)
    c_v = context_counts[prev]
    seen = c_v > 0
    safe = np.where(seen, c_v, 1.0)
    p = np.where(seen, np.maximum(c_vw - discount, 0) / safe + discount * distinct_next[prev] / safe * p_uni[targets],
                 p_uni[targets])
    return np.log(p)


def perplexity(logprobs: np.ndarray) -> float:
    """exp of the mean negative log-likelihood (natural log) per token."""
    check.not_a_string(logprobs, "logprobs", "numbers")
    logprobs = check.asarray(logprobs, "logprobs")
    if logprobs.dtype.kind not in "iuf" or logprobs.ndim == 0:
        raise TypeError(f"logprobs must be an array of natural-log probabilities, one per token, got "
                        f"{check.describe(logprobs)}")
    logprobs = logprobs.astype(np.float64).ravel()
    if logprobs.size == 0:
        raise ValueError("logprobs is empty, and the perplexity of no tokens is undefined; pass at least one")
    if np.isnan(logprobs).any():
        raise ValueError("logprobs holds NaN; pass finite log-probabilities")
    if logprobs.max() > 1e-4:  # float rounding can push a log(1) a hair above 0
        raise ValueError(f"logprobs must be log-probabilities (<= 0), got values up to {logprobs.max():g}: losses "
                         "(negative log-likelihoods) are >= 0, so pass -losses")
    with np.errstate(over="ignore"):  # a mean loss above ~709 nats overflows to an infinite perplexity
        return float(np.exp(-logprobs.mean()))


def tfidf_judge(texts: Sequence[str], labels: Sequence[int]):
    """Notebook 02's TF-IDF (1-2 grams, hashed) + logistic regression, fitted on ``texts``; a sentiment judge."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = check.texts(texts), check.class_labels(labels, "labels")
    check.same_length(texts=texts, labels=labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("labels must hold both classes (0 and 1) to fit a judge, got only one")
    judge = make_pipeline(
        HashingVectorizer(ngram_range=(1, 2), n_features=2**20, alternate_sign=False, norm=None, dtype=np.float32),
        TfidfTransformer(sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=1000),
    )
    return judge.fit(list(texts), labels)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) for a proportion of ``successes`` out of ``n``."""
    n = check.integer(n, "n", 1, hint="n is the number of trials.")
    successes = check.integer(successes, "successes", 0, n, hint="successes is a count, not a rate: for a rate r pass "
                              "round(r * n).")
    z = check.number(z, "z", 1e-9, hint="z is the normal quantile, 1.96 for 95 %.")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- Evaluation helpers of notebook 04: sliding windows, bits per byte, a trigram, a dense bigram ---------------------


def sliding_windows(tokens: np.ndarray, conds: np.ndarray, context: int,
                    stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows starting every ``stride`` tokens, and a mask that scores each target once (the first window all of its
    targets, every later window only its last ``stride``), so every scored token but the first few has at least
    ``context - stride`` tokens of context."""
    if len(tokens) != len(conds):
        raise ValueError(f"tokens ({len(tokens)}) and conds ({len(conds)}) must have the same length")
    if not 1 <= stride <= context:
        raise ValueError(f"stride must be between 1 and context ({context}), got {stride}")
    if len(tokens) < context + 1:
        raise ValueError(f"the stream ({len(tokens)} tokens) is too short for one window of {context} + 1 tokens")
    starts = np.arange(0, len(tokens) - context, stride)
    offsets = starts[:, None] + np.arange(context)[None, :]
    score = np.zeros(offsets.shape, dtype=bool)
    score[0] = True
    score[1:, context - stride:] = True
    return (tokens[offsets].astype(np.int64), tokens[offsets + 1].astype(np.int64), conds[offsets].astype(np.int64),
            score)


def token_bytes(tokenizer) -> np.ndarray:
    """UTF-8 bytes each token id stands for in a byte-level BPE tokenizer (one symbol per byte); special tokens 0."""
    vocab = tokenizer.get_vocab()
    out = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
    for piece, i in vocab.items():
        out[i] = 0 if piece in SPECIAL_TOKENS else len(piece)
    return out


def bits_per_byte(nats: float, n_bytes: int) -> float:
    """A total negative log-likelihood in nats spread over ``n_bytes`` bytes of text, in bits per byte."""
    if n_bytes <= 0:
        raise ValueError(f"n_bytes must be positive, got {n_bytes}")
    if not math.isfinite(nats) or nats < 0:
        raise ValueError(f"nats must be a finite non-negative total (a sum of -log p), got {nats}")
    return float(nats / math.log(2) / n_bytes)


def trigram_logprobs(train_tokens: np.ndarray, prev2: np.ndarray, prev1: np.ndarray, targets: np.ndarray,
                     vocab_size: int, discount: float = 0.75) -> np.ndarray:
    """Log-probabilities of ``targets`` after (``prev2``, ``prev1``) under an interpolated absolute-discount trigram.

    p(w | u, v) = max(c(u, v, w) - D, 0) / c(u, v) + D * N(u, v) / c(u, v) * p_bigram(w | v), where p_bigram is
    ``bigram_logprobs``'s model; a never-seen pair (u, v) falls back to the bigram.
    """
    if not 0 < discount < 1:
        raise ValueError(f"discount must be between 0 and 1, got {discount}")
    train_tokens = np.asarray(train_tokens, dtype=np.int64).ravel()
    prev2, prev1, targets = (np.asarray(a, dtype=np.int64) for a in (prev2, prev1, targets))
    if not prev2.shape == prev1.shape == targets.shape:
        raise ValueError(f"prev2 {prev2.shape}, prev1 {prev1.shape} and targets {targets.shape} must have one shape")
    V = vocab_size
    p_bi = np.exp(bigram_logprobs(train_tokens, prev1, targets, V, discount))
    keys, tri_counts = np.unique((train_tokens[:-2] * V + train_tokens[1:-1]) * V + train_tokens[2:], return_counts=True)
    pairs, first = np.unique(keys // V, return_index=True)  # distinct (u, v) and where each one's run of keys starts
    pair_counts = np.add.reduceat(tri_counts, first).astype(np.float64)
    distinct_next = np.diff(np.append(first, len(keys)))
    pair = prev2 * V + prev1
    at = np.clip(np.searchsorted(pairs, pair), 0, len(pairs) - 1)
    seen = pairs[at] == pair
    query = pair * V + targets
    pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    c_uvw = np.where(keys[pos] == query, tri_counts[pos], 0).astype(np.float64)
    c_uv = np.where(seen, pair_counts[at], 1.0)
    p = np.where(seen, np.maximum(c_uvw - discount, 0) / c_uv + discount * distinct_next[at] / c_uv * p_bi, p_bi)
    return np.log(p)


def bigram_matrix(train_tokens: np.ndarray, vocab_size: int, discount: float = 0.75) -> np.ndarray:
    """The whole (vocab, vocab) table of ``bigram_logprobs``'s p(w | v), row v, as float32: for sampling from it."""
    if not 0 < discount < 1:
        raise ValueError(f"discount must be between 0 and 1, got {discount}")
    train_tokens = np.asarray(train_tokens, dtype=np.int64).ravel()
    V = vocab_size
    if train_tokens.size < 2 or train_tokens.min() < 0 or train_tokens.max() >= V:
        raise ValueError(f"train_tokens must hold at least 2 ids in [0, {V}), got {train_tokens.size} tokens")
    p_uni = np.exp(unigram_logprobs(train_tokens, np.arange(V), V)).astype(np.float32)
    counts = np.bincount(train_tokens[:-1] * V + train_tokens[1:], minlength=V * V).reshape(V, V).astype(np.float32)
    c_v = counts.sum(axis=1, keepdims=True)
    n_v = (counts > 0).sum(axis=1, keepdims=True).astype(np.float32)
    safe = np.where(c_v > 0, c_v, 1.0)
    np.subtract(counts, discount, out=counts)
    np.maximum(counts, 0, out=counts)
    counts /= safe
    counts += (discount * n_v / safe) * p_uni[None, :]
    counts[c_v[:, 0] == 0] = p_uni  # a never-seen v: the unigram
    return counts
