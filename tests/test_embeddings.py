"""Unit tests for helpers.embeddings on tiny synthetic corpora (seconds, no IMDB data needed)."""

from __future__ import annotations

import numpy as np
import pytest

import helpers.embeddings as emb
from helpers.data import Imdb, Split

TINY_TEXTS = [
    "The movie was great, the acting was great!",
    "A boring film; the plot was boring and the acting awful.",
    "Great film. Great acting. A great movie!",
    "An awful, boring movie with awful acting.",
] * 10


def test_tokenize_lowercases_and_drops_ascii_punctuation() -> None:
    assert emb.tokenize("Don't PANIC: it's (only) a movie... 10/10!") == ["dont", "panic", "its", "only", "a",
                                                                          "movie", "1010"]
    assert emb.tokenize("Café   naïve\ttabs") == ["café", "naïve", "tabs"]  # non-ASCII letters are kept
    assert emb.tokenize("") == []


def test_tokenize_matches_keras_textvectorization_standardize() -> None:
    import re
    import string

    text = "Hello, World! It's <great> -- isn't it? #1 [a] {b} |c| ~d~"
    keras_like = re.sub(f"[{re.escape(string.punctuation)}]", "", text.lower()).split()
    assert emb.tokenize(text) == keras_like


def test_review_corpus_is_reiterable_and_lazy() -> None:
    corpus = emb.ReviewCorpus(["A b.", "C, d!"])
    assert len(corpus) == 2
    assert list(corpus) == [["a", "b"], ["c", "d"]]
    assert list(corpus) == [["a", "b"], ["c", "d"]]  # a second pass works (gensim makes several)
    assert not isinstance(iter(corpus), list)


def _fake_imdb(*args, **kwargs) -> Imdb:
    def split(texts: list[str]) -> Split:
        return Split(texts, np.zeros(len(texts), dtype=np.int64))

    return Imdb(train=split(["train one", "train two"]), val=split(["val one"]), test=split(["TEST never"]),
                test_subset=split(["TEST never"]), unsup=["unsup one", "unsup two"])


def test_embedding_texts_uses_train_val_unsup_never_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emb, "load_imdb", _fake_imdb)
    assert emb.embedding_texts(None) == ["train one", "train two", "val one", "unsup one", "unsup two"]
    assert emb.embedding_texts(3) == ["train one", "train two", "val one"]
    assert not any("TEST" in t for t in emb.embedding_texts(None))


def test_vectors_path_uses_the_work_dir_and_preset(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    monkeypatch.setenv("DLNLP_DATA_DIR", str(tmp_path / "shared"))  # never the (maybe shared) data directory
    monkeypatch.setenv("DLNLP_PRESET", "full")
    assert emb.vectors_path("glove") == tmp_path / "vectors" / "glove-full.npz"
    assert emb.vectors_path("glove", "small") == tmp_path / "vectors" / "glove-small.npz"


def test_word2vec_settings_cover_both_presets() -> None:
    for size in ("small", "full"):
        settings = emb.WORD2VEC_SETTINGS[size]
        assert {"n_docs", "vector_size", "window", "min_count", "negative", "epochs"} <= set(settings)


def _tiny_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = {"n_docs": None, "vector_size": 8, "window": 2, "min_count": 1, "negative": 2, "epochs": 2}
    monkeypatch.setitem(emb.WORD2VEC_SETTINGS, "small", tiny)
    monkeypatch.setattr(emb, "embedding_texts", lambda n_docs, seed=0: TINY_TEXTS)


def test_train_save_reload_and_retrain_when_missing(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    _tiny_settings(monkeypatch)
    path = emb.vectors_path("word2vec_sg", "small")
    assert not path.exists()
    wv = emb.load_or_train_vectors("word2vec_sg", "small")  # missing: retrains and saves
    assert path.exists() and wv.vector_size == 8 and "great" in wv.key_to_index
    assert "training Word2Vec" in capsys.readouterr().out
    monkeypatch.setattr(emb, "train_word2vec", lambda *a, **k: pytest.fail("should reload, not retrain"))
    again = emb.load_or_train_vectors("word2vec_sg", "small", verbose=False)
    assert again.index_to_key == wv.index_to_key and np.allclose(again.vectors, wv.vectors)
    assert not list(path.parent.glob("*.tmp*"))  # no temporary files left behind


def test_load_other_missing_vectors_says_which_notebook(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="01_word_embeddings"):
        emb.load_or_train_vectors("glove", "small")


def test_keyed_vectors_and_save_vectors_roundtrip(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    wv = emb.keyed_vectors(["a", "b", "c"], vectors)
    assert wv.index_to_key == ["a", "b", "c"] and np.allclose(wv["b"], vectors[1])
    emb.save_vectors(wv, "custom", "small")
    assert np.allclose(emb.load_or_train_vectors("custom", "small")["c"], vectors[2])


def _trained(seed: int = 1):
    from gensim.models import Word2Vec

    return Word2Vec([emb.tokenize(t) for t in TINY_TEXTS] + [["café", "日本", "x"]], vector_size=8, min_count=1,
                    epochs=1, workers=1, seed=seed)


def test_save_and_load_keep_order_vectors_and_counts_exactly(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    wv = _trained().wv
    path = emb.save_vectors(wv, "word2vec_sg", "small")
    assert path == emb.vectors_path("word2vec_sg", "small") and path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as npz:  # plain arrays: loading runs no code
        assert all(npz[name].dtype != object for name in npz.files)
    again = emb.load_or_train_vectors("word2vec_sg", "small")
    assert again.index_to_key == wv.index_to_key and again.key_to_index == wv.key_to_index
    assert again.vectors.dtype == np.float32 and np.array_equal(again.vectors, wv.vectors)
    assert [again.get_vecattr(w, "count") for w in wv.index_to_key] == [wv.get_vecattr(w, "count") for w in wv.index_to_key]
    assert again.most_similar("great", topn=3) == wv.most_similar("great", topn=3)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left behind


def test_fasttext_vectors_are_saved_as_their_word_vectors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gensim.models import FastText

    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    model = FastText([emb.tokenize(t) for t in TINY_TEXTS], vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
    emb.save_vectors(model.wv, "fasttext", "small")
    again = emb.load_or_train_vectors("fasttext", "small")
    assert again.index_to_key == model.wv.index_to_key and np.array_equal(again.vectors, model.wv.vectors)


def test_old_pickled_kv_files_are_never_loaded(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    old = emb.vectors_path("glove", "small").with_suffix(".kv")
    old.parent.mkdir(parents=True)
    old.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(FileNotFoundError, match="01_word_embeddings"):
        emb.load_or_train_vectors("glove", "small")
    assert "never loaded" in capsys.readouterr().out and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content", [b"garbage", "pickle"])
def test_damaged_vectors_file_is_rejected_or_retrained(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                      content) -> None:
    import pickle

    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    for name in ("glove", "word2vec_sg"):
        path = emb.vectors_path(name, "small")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps({"a": 1}) if content == "pickle" else content)
    with pytest.raises(FileNotFoundError, match="not a vectors file.*Delete it and run notebook 01"):
        emb.load_or_train_vectors("glove", "small")
    _tiny_settings(monkeypatch)
    wv = emb.load_or_train_vectors("word2vec_sg", "small", verbose=False)  # retrained and saved over the bad file
    assert "will be replaced" in capsys.readouterr().out
    assert emb.load_vectors(emb.vectors_path("word2vec_sg", "small")).index_to_key == wv.index_to_key


def test_vectors_with_mismatched_arrays_are_damaged(tmp_path) -> None:
    from helpers.data import pack_texts, write_npz

    words, offsets = pack_texts(["a", "b"])
    path = tmp_path / "v.npz"
    write_npz(path, {"kind": np.array(emb.VECTORS_KIND), "format": np.array(emb.VECTORS_FORMAT),
                     "vectors": np.zeros((3, 4), np.float32), "words": words, "word_offsets": offsets})
    with pytest.raises(ValueError, match="damaged: 2 words for vectors of shape"):
        emb.load_vectors(path)


def test_token_ids_marks_unknown_words() -> None:
    ids = emb.token_ids(["The cat, the DOG."], {"the": 0, "dog": 1})
    assert ids[0].dtype == np.int32 and ids[0].tolist() == [0, -1, 0, 1]


def test_cooccurrence_matrix_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    docs = [rng.integers(-1, 6, size=n).astype(np.int32) for n in (7, 1, 0, 12)]
    window = 3
    expected = np.zeros((6, 6))
    for doc in docs:
        for p, i in enumerate(doc):
            for q in range(max(0, p - window), min(len(doc), p + window + 1)):
                if q != p and i >= 0 and doc[q] >= 0:
                    expected[i, doc[q]] += 1 / abs(p - q)
    counts = emb.cooccurrence_matrix(docs, 6, window=window)
    assert counts.shape == (6, 6) and counts.dtype == np.float32
    assert np.allclose(counts.toarray(), expected, atol=1e-5)


def test_cooccurrence_matrix_never_crosses_documents() -> None:
    counts = emb.cooccurrence_matrix([np.array([0, 1]), np.array([2])], 3, window=5)
    assert counts[1, 2] == 0 and counts[0, 1] == counts[1, 0] == 1.0


def _analogy_vectors():
    # Plural = word + a fixed offset: every "gram8-plural"-style question has an exact answer.
    rng = np.random.default_rng(1)
    stems = ["cat", "dog", "car", "tree"]
    base = rng.normal(size=(len(stems), 16))
    offset = rng.normal(size=16) * 0.3
    words = stems + [s + "s" for s in stems] + ["noise"]
    vectors = np.vstack([base, base + offset, rng.normal(size=(1, 16))])
    return emb.keyed_vectors(words, vectors)


def test_evaluate_analogies_agrees_with_gensim(tmp_path) -> None:
    path = tmp_path / "questions.txt"
    path.write_text(": capital-common-countries\nAthens Greece Paris France\n"
                    ": gram8-plural\ncat cats dog dogs\ncar cars tree trees\ndog dogs tree trees\n"
                    "cat cats unicorn unicorns\n", encoding="utf-8")
    wv = _analogy_vectors()
    mine = emb.evaluate_analogies(wv, str(path), batch=2)
    gensim_score, sections = wv.evaluate_word_analogies(str(path))
    assert mine["accuracy"] == pytest.approx(gensim_score) == 1.0
    assert mine["answered"] == 3 and mine["skipped"] == pytest.approx(2 / 5)
    assert mine["syntactic"] == 1.0 and mine["semantic"] == 0.0
    assert np.isnan(mine["sections"]["capital-common-countries"]) and mine["sections"]["gram8-plural"] == 1.0
    top7 = emb.evaluate_analogies(wv, str(path), restrict_vocab=7)  # "trees" (8th) and "noise" (9th) drop out
    assert top7["answered"] == 1 and top7["skipped"] == pytest.approx(4 / 5)
    assert top7["accuracy"] == pytest.approx(wv.evaluate_word_analogies(str(path), restrict_vocab=7)[0])


def test_read_analogies_lowercases_the_shipped_benchmark() -> None:
    questions = emb.read_analogies()
    assert len(questions) == 19_544
    assert questions[0] == ("capital-common-countries", ("athens", "greece", "baghdad", "iraq"))
    assert sum(s in emb.SEMANTIC_SECTIONS for s, _ in questions) == 8_869


def test_evaluate_reports_every_benchmark() -> None:
    from gensim.models import Word2Vec

    model = Word2Vec([emb.tokenize(t) for t in TINY_TEXTS], vector_size=8, min_count=1, epochs=1, workers=1, seed=1)
    scores = emb.evaluate(model.wv)
    assert set(scores) >= {"wordsim353", "simlex999", "analogy_accuracy", "analogy_skipped", "analogy_top30k",
                           "analogy_top30k_skipped"}
    assert scores["analogy_skipped"] == 1.0 and scores["analogy_accuracy"] == 0.0  # no benchmark word is known
    assert scores["wordsim353_skipped"] == 1.0 and np.isnan(scores["wordsim353"])  # nothing to correlate


def test_mean_vectors_averages_known_tokens() -> None:
    wv = emb.keyed_vectors(["good", "bad"], np.array([[1.0, 0.0], [0.0, 1.0]]))
    features = emb.mean_vectors(wv, ["Good, good BAD!", "unknown words only", "bad"])
    assert features.shape == (3, 2) and features.dtype == np.float32
    assert np.allclose(features, [[2 / 3, 1 / 3], [0, 0], [0, 1]])
