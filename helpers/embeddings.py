"""Word vectors shared between notebooks: tokenisation, a streaming corpus, and save / reload / retrain."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .data import load_imdb, work_dir
from .runtime import preset

# Same rule as keras.layers.TextVectorization's default standardize (lower case, ASCII punctuation removed),
# so that notebook 02's vocabulary finds these vectors.
_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']")

# Word2Vec skip-gram settings per preset; notebook 01 trains with these and notebook 02 reuses the result.
WORD2VEC_SETTINGS = {
    "small": {"n_docs": 30_000, "vector_size": 100, "window": 5, "min_count": 5, "negative": 5, "epochs": 3},
    "full": {"n_docs": None, "vector_size": 300, "window": 5, "min_count": 5, "negative": 5, "epochs": 5},
}


def tokenize(text: str) -> list[str]:
    """Lower-case, drop ASCII punctuation (as Keras TextVectorization does) and split on whitespace."""
    return _PUNCTUATION.sub("", text.lower()).split()


class ReviewCorpus:
    """Re-iterable stream of tokenised reviews, so gensim never needs all tokens in memory at once."""

    def __init__(self, texts: Sequence[str]):
        self.texts = texts

    def __iter__(self) -> Iterator[list[str]]:
        for text in self.texts:
            yield tokenize(text)

    def __len__(self) -> int:
        return len(self.texts)


def embedding_texts(n_docs: int | None, seed: int = 0) -> list[str]:
    """Train + unsup review texts for embedding training (never test), optionally the first ``n_docs``."""
    imdb = load_imdb(seed=seed, verbose=False)
    texts = imdb.train.texts + imdb.val.texts + imdb.unsup
    return texts if n_docs is None else texts[:n_docs]


def vectors_path(name: str, size: str | None = None) -> Path:
    """Where vectors called ``name`` for a preset live: ``<data>/vectors/<name>-<preset>.kv``."""
    return work_dir() / "vectors" / f"{name}-{size or preset()}.kv"


def train_word2vec(size: str | None = None, seed: int = 42, workers: int = 2):
    """Train Word2Vec skip-gram with negative sampling on the preset's IMDB texts; return KeyedVectors."""
    from gensim.models import Word2Vec

    cfg = dict(WORD2VEC_SETTINGS[size or preset()])
    corpus = ReviewCorpus(embedding_texts(cfg.pop("n_docs"), seed=0))
    model = Word2Vec(corpus, sg=1, seed=seed, workers=workers, **cfg)
    return model.wv


def load_or_train_vectors(name: str = "word2vec_sg", size: str | None = None, verbose: bool = True):
    """Reload saved KeyedVectors, or (for ``word2vec_sg``) retrain and save them when they are missing."""
    from gensim.models import KeyedVectors

    path = vectors_path(name, size)
    if path.exists():
        return KeyedVectors.load(str(path))
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


def save_vectors(wv, name: str, size: str | None = None) -> Path:
    """Save KeyedVectors under ``name`` for the preset, writing to a temporary name first."""
    path = vectors_path(name, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    wv.save(str(tmp))
    for extra in tmp.parent.glob(tmp.name + ".*"):  # large arrays that gensim stores beside the file
        extra.replace(path.with_name(path.name + extra.name[len(tmp.name):]))
    tmp.replace(path)
    return path
