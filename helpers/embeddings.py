"""Word vectors shared between notebooks: tokenisation, a streaming corpus, and save / reload / retrain."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from . import validate as check
from .data import load_imdb, pack_texts, unpack_texts, work_dir, write_npz
from .runtime import PRESETS, preset, usable_cpus

# Same rule as keras.layers.TextVectorization's default standardize (lower case, ASCII punctuation removed),
# so that notebook 02's vocabulary finds these vectors.
_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']")

VECTORS_KIND = "dlnlp-vectors"
VECTORS_FORMAT = 1  # an .npz of float32 vectors, the words as UTF-8 bytes + offsets, and word counts if known

# Word2Vec skip-gram settings per preset; notebook 01 trains with these and notebook 02 reuses the result.
WORD2VEC_SETTINGS = {
    "small": {"n_docs": 12_000, "vector_size": 100, "window": 5, "min_count": 5, "negative": 5, "epochs": 3},
    "full": {"n_docs": None, "vector_size": 300, "window": 5, "min_count": 5, "negative": 5, "epochs": 5},
}


def tokenize(text: str) -> list[str]:
    """Lower-case, drop ASCII punctuation (as Keras TextVectorization does) and split on whitespace."""
    if not isinstance(text, str):
        raise TypeError(f"text must be one review's text (a str), got {check.describe(text)}; for many texts call "
                        "tokenize on each")
    return _PUNCTUATION.sub("", text.lower()).split()


class ReviewCorpus:
    """Re-iterable stream of tokenised reviews, so gensim never needs all tokens in memory at once."""

    def __init__(self, texts: Sequence[str]):
        self.texts = check.texts(texts)

    def __iter__(self) -> Iterator[list[str]]:
        for text in self.texts:
            yield tokenize(text)

    def __len__(self) -> int:
        return len(self.texts)


def embedding_texts(n_docs: int | None, seed: int = 0) -> list[str]:
    """Train + unsup review texts for embedding training (never test), optionally the first ``n_docs``."""
    if n_docs is not None:
        n_docs = check.integer(n_docs, "n_docs", 1, hint="Pass None for every text.")
    imdb = load_imdb(seed=seed, verbose=False)
    texts = imdb.train.texts + imdb.val.texts + imdb.unsup
    return texts if n_docs is None else texts[:n_docs]


def vectors_path(name: str, size: str | None = None) -> Path:
    """Where vectors called ``name`` for a preset live: ``<work>/vectors/<name>-<preset>.npz`` (the learner's own)."""
    check.plain_name(name, "name", "word2vec_sg")
    size = preset() if size is None else check.one_of(size, "size", PRESETS)
    return work_dir() / "vectors" / f"{name}-{size}.npz"


def train_word2vec(size: str | None = None, seed: int = 42, workers: int | None = None):
    """Train Word2Vec skip-gram with negative sampling on the preset's IMDB texts (workers: the usable CPUs); KeyedVectors."""
    from gensim.models import Word2Vec

    size = preset() if size is None else check.one_of(size, "size", PRESETS)
    workers = usable_cpus() if workers is None else workers
    seed, workers = check.integer(seed, "seed", 0), check.integer(workers, "workers", 1)
    cfg = dict(WORD2VEC_SETTINGS[size])
    corpus = ReviewCorpus(embedding_texts(cfg.pop("n_docs"), seed=0))
    model = Word2Vec(corpus, sg=1, seed=seed, workers=workers, **cfg)
    return model.wv


def save_vectors(wv, name: str, size: str | None = None) -> Path:
    """Save KeyedVectors (words in order, float32 vectors, counts if known) as a pickle-free ``.npz``, atomically."""
    wv, path = check.keyed_vectors(wv), vectors_path(name, size)
    text, offsets = pack_texts([str(key) for key in wv.index_to_key])
    arrays = {"kind": np.array(VECTORS_KIND), "format": np.array(VECTORS_FORMAT, dtype=np.int64),
              "vectors": np.ascontiguousarray(wv.vectors, dtype=np.float32), "words": text, "word_offsets": offsets}
    if "count" in getattr(wv, "expandos", {}):
        arrays["counts"] = np.asarray(wv.expandos["count"], dtype=np.int64)
    write_npz(path, arrays, f"the vectors {path.name}")
    return path


def load_vectors(path: Path):
    """Read vectors that ``save_vectors`` wrote, as gensim KeyedVectors; ``ValueError`` when the file is not such a file."""
    path = check.path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:  # arrays only: loading cannot run code
            if str(npz["kind"]) != VECTORS_KIND or int(npz["format"]) != VECTORS_FORMAT:
                raise ValueError(f"format {int(npz['format'])} of {str(npz['kind'])!r}, expected {VECTORS_FORMAT}")
            words = unpack_texts(npz["words"], npz["word_offsets"])
            vectors = npz["vectors"]
            counts = npz["counts"] if "counts" in npz.files else None
    except Exception as err:  # noqa: BLE001 - whatever is wrong, the file is not trusted
        raise ValueError(f"{path} is not a vectors file this version can read ({type(err).__name__}: {err})") from err
    if vectors.ndim != 2 or vectors.dtype != np.float32 or len(vectors) != len(words) or len(set(words)) != len(words):
        raise ValueError(f"{path} is damaged: {len(words):,} words for vectors of shape {vectors.shape}")
    from gensim.models import KeyedVectors

    wv = KeyedVectors(vector_size=vectors.shape[1])  # filled directly: add_vectors takes seconds for 100,000 words
    wv.index_to_key, wv.key_to_index, wv.vectors = words, {word: i for i, word in enumerate(words)}, vectors
    if counts is not None and counts.shape == (len(words),):
        wv.allocate_vecattrs(["count"], [np.int64])
        wv.expandos["count"][:] = counts
    return wv


def load_or_train_vectors(name: str = "word2vec_sg", size: str | None = None, verbose: bool = True):
    """Reload saved vectors, or (for ``word2vec_sg``) retrain and save them when they are missing or unreadable."""
    path = vectors_path(name, size)
    if path.exists():
        try:
            return load_vectors(path)
        except ValueError as err:
            if name != "word2vec_sg":
                raise FileNotFoundError(f"{err}. Delete it and run notebook 01_word_embeddings again to recreate it.") from err
            print(f"{err}; it will be replaced.")
    elif path.with_suffix(".kv").exists():
        print(f"Ignoring {path.with_suffix('.kv')}: gensim's .kv files are pickles, which can run code, so they are "
              f"never loaded. Delete it; vectors are now saved as {path.name}.")
    if name != "word2vec_sg":
        raise FileNotFoundError(f"No saved vectors at {path}. Run notebook 01_word_embeddings to create them.")
    if verbose:
        print(f"{path.name} not found: training Word2Vec (skip-gram) now; notebook 01 explains it.")
    start = time.perf_counter()
    wv = train_word2vec(size)
    save_vectors(wv, name, size)
    if verbose:
        print(f"Trained {len(wv):,} word vectors in {time.perf_counter() - start:.0f} s and saved them to {path}.")
    return wv


# ----------------------------------------------------------------------------------------------------------
# Evaluation on the benchmarks that ship inside gensim, the same for every model.

SIMILARITY_BENCHMARKS = ("wordsim353.tsv", "simlex999.txt")
SEMANTIC_SECTIONS = ("capital-common-countries", "capital-world", "currency", "city-in-state", "family")


def benchmark_path(name: str) -> str:
    """Path of a benchmark file shipped with gensim: ``questions-words.txt``, ``wordsim353.tsv``, ``simlex999.txt``."""
    from gensim.test.utils import datapath

    return datapath(name)


def read_analogies(path: str | None = None) -> list[tuple[str, tuple[str, str, str, str]]]:
    """The Google analogy questions as (section, (a, b, c, d)) in lower case: a is to b as c is to d."""
    questions, section = [], ""
    path = None if path is None else check.path(path)
    with open(path or benchmark_path("questions-words.txt"), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(":"):
                section = line[1:].strip()
            elif len(words := line.lower().split()) == 4:
                questions.append((section, tuple(words)))
    return questions


def evaluate_analogies(wv, path: str | None = None, restrict_vocab: int = 300_000, batch: int = 512) -> dict:
    """Answer every analogy a:b :: c:? with 3CosAdd (nearest unit vector to b - a + c, excluding a, b, c).

    Same rule and vocabulary restriction as gensim's ``KeyedVectors.evaluate_word_analogies``, but in batches
    of matrix products, so all 19,544 questions take seconds. Questions with a word outside the (restricted)
    vocabulary are skipped and reported as ``skipped`` (a share of all questions), never counted as wrong.
    """
    wv, questions = check.keyed_vectors(wv), read_analogies(path)
    restrict_vocab, batch = check.integer(restrict_vocab, "restrict_vocab", 1), check.integer(batch, "batch", 1)
    keys = wv.index_to_key[:restrict_vocab]
    index = {key.lower(): i for i, key in reversed(list(enumerate(keys)))}
    unit = np.asarray(wv.get_normed_vectors()[: len(keys)], dtype=np.float32)
    kept = [(s, [index[w] for w in q]) for s, q in questions if all(w in index for w in q)]
    correct = np.zeros(len(kept), dtype=bool)
    ids = np.array([q for _, q in kept], dtype=np.int64).reshape(-1, 4)
    for start in range(0, len(ids), batch):
        a, b, c, d = ids[start:start + batch].T
        scores = (unit[b] - unit[a] + unit[c]) @ unit.T
        rows = np.arange(len(a))
        for excluded in (a, b, c):
            scores[rows, excluded] = -np.inf
        correct[start:start + batch] = scores.argmax(axis=1) == d
    sections = np.array([s for s, _ in kept])
    per_section = {}
    for name in dict.fromkeys(s for s, _ in questions):
        mask = sections == name
        per_section[name] = float(correct[mask].mean()) if mask.any() else float("nan")
    semantic = np.isin(sections, SEMANTIC_SECTIONS)

    def share(mask: np.ndarray) -> float:
        return float(correct[mask].mean()) if mask.any() else 0.0

    return {
        "accuracy": share(np.ones(len(kept), dtype=bool)),
        "semantic": share(semantic),
        "syntactic": share(~semantic),
        "skipped": 1 - len(kept) / len(questions),
        "answered": len(kept),
        "sections": per_section,
    }


def evaluate_similarity(wv, name: str = "wordsim353.tsv") -> tuple[float, float]:
    """Spearman correlation between cosine similarity and human ratings, and the share of pairs skipped (OOV).

    Pairs with a word outside the vocabulary are skipped (gensim's default); with no known pair at all the
    correlation is NaN.
    """
    wv = check.keyed_vectors(wv)
    check.one_of(name, "name", SIMILARITY_BENCHMARKS)
    try:
        _pearson, spearman, oov_percent = wv.evaluate_word_pairs(benchmark_path(name), case_insensitive=True)
    except ValueError:  # gensim raises when not a single pair is in the vocabulary
        return float("nan"), 1.0
    return float(spearman[0]), float(oov_percent) / 100


def evaluate(wv) -> dict[str, float]:
    """All benchmark numbers for one set of vectors: WordSim353, SimLex-999 and the Google analogies (two protocols)."""
    analogies = evaluate_analogies(check.keyed_vectors(wv))
    top30k = evaluate_analogies(wv, restrict_vocab=30_000)  # word2vec's compute-accuracy and gensim's old default
    wordsim, wordsim_skipped = evaluate_similarity(wv, "wordsim353.tsv")
    simlex, simlex_skipped = evaluate_similarity(wv, "simlex999.txt")
    return {
        "wordsim353": wordsim, "simlex999": simlex,
        "analogy_accuracy": analogies["accuracy"], "analogy_semantic": analogies["semantic"],
        "analogy_syntactic": analogies["syntactic"], "analogy_skipped": analogies["skipped"],
        "wordsim353_skipped": wordsim_skipped, "simlex999_skipped": simlex_skipped,
        "analogy_top30k": top30k["accuracy"], "analogy_top30k_skipped": top30k["skipped"],
    }


# ----------------------------------------------------------------------------------------------------------
# Building blocks reused by notebook 01 for GloVe and for the sentiment probe.

def token_ids(texts: Iterable[str], key_to_index: dict[str, int]) -> list[np.ndarray]:
    """Each text as an int32 array of vocabulary ids, -1 where a token is not in the vocabulary."""
    if not isinstance(key_to_index, Mapping):
        hint = "; pass wv.key_to_index" if hasattr(key_to_index, "key_to_index") else ""
        raise TypeError(f"key_to_index must be a dict of word -> id, got {check.describe(key_to_index)}{hint}")
    return [np.array([key_to_index.get(t, -1) for t in tokenize(text)], dtype=np.int32) for text in check.texts(texts)]


def cooccurrence_matrix(docs: Sequence[np.ndarray], vocab_size: int, window: int = 5):
    """Distance-weighted co-occurrence counts as a symmetric ``scipy.sparse.csr_matrix`` (float32).

    ``X[i, j]`` sums ``1 / d`` over every time word ``j`` occurs ``d <= window`` positions from word ``i`` in
    the same document (GloVe's weighting). Ids of -1 (out of vocabulary) keep their place, so distances
    are counted in the original text, but make no pairs. Vectorised: one pass per distance ``d``, never a
    Python loop over tokens.
    """
    from scipy import sparse

    vocab_size, window = check.integer(vocab_size, "vocab_size", 1), check.integer(window, "window", 1)
    docs = check.id_sequences(docs, "docs", minimum=-1)
    ids = np.concatenate(docs).astype(np.int64) if docs else np.zeros(0, np.int64)
    if ids.size and ids.max() >= vocab_size:
        raise ValueError(f"docs hold ids up to {ids.max()}, but vocab_size is {vocab_size}; ids must be below it")
    doc_of = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    counts = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float32)
    longest = max((len(d) for d in docs), default=0)
    for d in range(1, min(window, longest - 1) + 1):  # no pair is further apart than the longest document
        left, right = ids[:-d], ids[d:]
        keep = (doc_of[:-d] == doc_of[d:]) & (left >= 0) & (right >= 0)
        weight = np.full(int(keep.sum()), 1.0 / d, dtype=np.float32)
        counts = counts + sparse.csr_matrix((weight, (left[keep], right[keep])), shape=(vocab_size, vocab_size))
    counts = (counts + counts.T).tocsr()
    counts.sum_duplicates()
    return counts


def mean_vectors(wv, texts: Sequence[str]) -> np.ndarray:
    """One feature row per text: the mean of the vectors of its in-vocabulary tokens (zeros if none)."""
    wv, texts = check.keyed_vectors(wv), check.texts(texts)
    features = np.zeros((len(texts), wv.vector_size), dtype=np.float32)
    index = wv.key_to_index
    for row, text in enumerate(texts):
        ids = [index[t] for t in tokenize(text) if t in index]
        if ids:
            features[row] = wv.vectors[ids].mean(axis=0)
    return features


def keyed_vectors(words: Sequence[str], vectors: np.ndarray):
    """Wrap a word list and a (len(words), dim) array as gensim KeyedVectors (e.g. vectors trained outside gensim)."""
    from gensim.models import KeyedVectors

    words, vectors = check.words(words), check.array(vectors, "vectors", ndim=2).astype(np.float32)
    check.same_length(words=words, vectors=vectors)
    if len(set(words)) != len(words):
        raise ValueError(f"words must be distinct, got {len(words) - len(set(words))} repeated")
    wv = KeyedVectors(vector_size=vectors.shape[1])
    wv.add_vectors(list(words), vectors)
    return wv
