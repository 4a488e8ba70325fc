"""Fuzz the learner-facing helpers with plausible wrong inputs: a correct result or a clear error, fast, no stray file.

Each test draws every argument either as a correct value or from a pool of a learner's typical mistakes (a string for a
list of texts, probabilities for labels, (n, 1) columns, -1/+1 labels, zero and negative sizes, NaN, paths outside the
work directory, a model for its vectors ...). A call must then either raise ``TypeError``/``ValueError`` naming one of
the arguments it got wrong, or return a result that an independent oracle confirms; an independent validity rule says
which of the two is due. Every call runs under a 10-second alarm, and the files outside the work directory (and the
results file, unless a row was recorded) are compared before and after. ``HYPOTHESIS_PROFILE=explore`` draws new
examples, and more of them; the default profile ``ci`` is derandomised, so CI sees the same examples every run.
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import tiny_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import bert, data, embeddings, lm, plots, results, runtime, sequences

settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=40, print_blob=True,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("explore", database=None, deadline=None, max_examples=400,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TIME_LIMIT_S = 10  # seconds; a correct call takes milliseconds, but a busy 2-core CI machine can stall one
FEW = 20  # examples for the slower functions (plots draw a figure, tokenizers train)


class Hang(BaseException):  # noqa: N818 - a BaseException, so that no ``except Exception`` in a helper swallows it
    """A call ran past ``TIME_LIMIT_S``."""


@contextmanager
def time_limit(seconds: float = TIME_LIMIT_S) -> Iterator[None]:
    def alarm(*_: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _snapshot(root: Path, skip: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and skip not in p.parents}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A work directory three levels down in ``tmp_path`` (cwd: ``tmp_path/outside``); nothing else may change."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "notebook.ipynb").write_text('{"cells": []}')
    monkeypatch.setenv(data.WORK_DIR_ENV, str(work))
    monkeypatch.delenv(runtime.PRESET_ENV, raising=False)
    monkeypatch.chdir(tmp_path / "outside")
    before = _snapshot(tmp_path, work)
    yield work
    assert _snapshot(tmp_path, work) == before, "a file outside the work directory was written or changed"
    import matplotlib.pyplot as plt

    plt.close("all")


def call(func: Callable[..., Any], kwargs: dict[str, Any], valid: bool | None,
         oracle: Callable[[Any], None] = lambda _: None) -> Any:
    """Call ``func``: a clear error when ``valid`` is False, an oracle-checked result when True (either when None)."""
    shown = {k: _short(v) for k, v in kwargs.items()}
    try:
        with time_limit():
            result = func(**kwargs)
    except (TypeError, ValueError) as err:
        message = str(err)
        assert valid is not True, f"{func.__name__}({shown}) refused a correct call: {message}"
        assert len(message) > 25 and any(name in message for name in kwargs), \
            f"{func.__name__}({shown}) raised an unclear {type(err).__name__}: {message}"
        return None
    assert valid is not False, f"{func.__name__}({shown}) accepted a wrong call and returned {_short(result)}"
    oracle(result)
    return result


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


# --- what learners pass --------------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
SCALARS = [None, True, False, 0, -1, -5, 1, 2, 3, 7, 0.0, 0.5, 0.8, 1.5, 2.0, -0.3, 85.0, NAN, INF, -INF, 10**6,
           np.int64(3), np.float32(0.7), "", "3", "great movie", b"bytes", object()]
COLLECTIONS = [[], [""], ["a good film", "bad"], "a good film", [1, 2, 3], (0, 1, 1), [[1, 2], [3]], [0.2, 0.9, 0.6],
               [0, 1, 1], [1, 0, 1], [-1, 1, 1], [True, False, True], np.array([0, 1, 1]), np.array([[0], [1], [1]]),
               np.array([[0.2], [0.9], [0.6]]), np.array([0.1, 0.7, 0.4]), np.array([-1, 1, 1]), np.zeros((2, 2)),
               np.array([0.5, NAN, 1.0]), np.array(["0", "1", "1"]), {"loss": [1.0, 0.5]}, [None, 1, 0], np.array([])]
MISTAKES = st.one_of(
    st.sampled_from(SCALARS + COLLECTIONS),
    st.integers(-3, 10**7), st.floats(allow_subnormal=False), st.text(max_size=12),
    st.lists(st.text(max_size=8), max_size=4), st.lists(st.integers(-2, 6), max_size=7),
    st.lists(st.floats(-2, 2), max_size=5), st.lists(st.lists(st.integers(-1, 6), max_size=5), max_size=4),
)


def maybe(good: Any, *extra: Any) -> st.SearchStrategy:
    """The correct value, a typical mistake, or one of ``extra`` (mistakes specific to this argument)."""
    return st.one_of(st.just(good), MISTAKES, *(st.sampled_from(list(extra)),) if extra else ())


def args(**params: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(params)


# --- independent validity rules ------------------------------------------------------------------------------------

def is_int(v: Any, low: int = 1) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= low


def is_texts(v: Any) -> bool:
    if isinstance(v, np.ndarray):
        return v.ndim == 1 and v.dtype.kind == "U"
    return isinstance(v, list | tuple) and all(isinstance(t, str) for t in v)


def numbers(v: Any) -> np.ndarray | None:
    """``v`` as a flat float array when it is a list or array of real numbers ((n, 1) allowed), else None."""
    if isinstance(v, str | bytes | dict) or v is None or np.isscalar(v):
        return None
    try:
        arr = np.asarray(v)
    except ValueError:
        return None
    if arr.dtype.kind not in "biuf" and not (arr.size == 0 and arr.dtype.kind != "O"):
        return None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr.astype(float) if arr.ndim == 1 else None


def flat_numbers(v: Any) -> np.ndarray | None:
    """``v`` flattened to floats when it is an array or nested lists of real numbers (not bools), of any shape."""
    if isinstance(v, str | bytes | dict) or v is None or np.isscalar(v):
        return None
    try:
        arr = np.asarray(v)
    except ValueError:
        return None
    return arr.astype(float).ravel() if arr.dtype.kind in "iuf" and arr.ndim > 0 else None


def labels01(v: Any) -> np.ndarray | None:
    arr = numbers(v)
    return arr.astype(int) if arr is not None and np.isin(arr, (0, 1)).all() else None


def id_lists(v: Any, low: int = 0) -> list[list[int]] | None:
    if isinstance(v, np.ndarray) and (v.dtype == object or v.ndim == 2 and v.dtype.kind in "iu"):
        v = list(v)  # a ragged Keras batch (.numpy()) or a padded 2-D one: one row per review
    if not isinstance(v, list | tuple):
        return None
    out = []
    for seq in v:
        if not isinstance(seq, list | tuple | np.ndarray) or not all(is_int(i, low) for i in seq):
            return None
        out.append([int(i) for i in seq])
    return out


# --- the results store ---------------------------------------------------------------------------------------------

OLD_ROW = {"notebook": "01", "method": "old", "preset": "small", "subset_accuracy": 0.5}
PATHS = ["results.json", "my-results.json", "notebook.ipynb", "config.json", "results.txt"]
FILE_CONTENTS = [None, json.dumps([OLD_ROW]), "\ufeff" + json.dumps([OLD_ROW]), "{broken", "null", '"x"', "{}",
                 "[1, 2]", "", "\x00\xff"]


@settings(max_examples=60)
@given(content=st.sampled_from(FILE_CONTENTS),
       kw=args(notebook=maybe("02_lstm_sentiment"), method=maybe("LSTM"), subset_accuracy=maybe(0.8),
               n_params=maybe(1000), labelled_reviews=maybe(2000, 0),
               pretraining=maybe("none", "IMDB unlabelled reviews", "external text (all-MiniLM-L6-v2)", "wiki"),
               path=maybe(None, *PATHS),
               val_perplexity=maybe(12.5), control_interval=maybe([0.4, 0.6], [0.4, NAN], np.array([0.4, 0.6]))))
def test_record_result_keeps_every_row_and_every_file(sandbox: Path, content: str | None, kw: dict[str, Any]) -> None:
    if isinstance(kw["path"], str) and kw["path"] in PATHS:  # the learner's own file: in the work directory, or
        kw["path"] = Path.cwd() / kw["path"] if kw["path"] == "notebook.ipynb" else sandbox / kw["path"]  # a notebook
    target = results.results_path() if kw["path"] is None else kw["path"]
    if content is not None and isinstance(target, Path) and target.suffix == ".json":
        target.write_text(content, encoding="utf-8")
    before = {p.name: p.read_bytes() for p in sandbox.iterdir() if p.is_file()}
    ok = (all(isinstance(kw[k], str) and kw[k].strip() for k in ("notebook", "method"))
          and (is_number(kw["subset_accuracy"]) and 0 <= kw["subset_accuracy"] <= 1 or kw["subset_accuracy"] is None)
          and (is_int(kw["n_params"], 0) or kw["n_params"] is None)
          and (is_int(kw["labelled_reviews"], 0) or kw["labelled_reviews"] is None)
          and (kw["pretraining"] is None or kw["pretraining"] in ("none", "IMDB unlabelled reviews")
               or isinstance(kw["pretraining"], str) and kw["pretraining"].startswith("external text (")
               and kw["pretraining"].endswith(")") and len(kw["pretraining"]) > 16)
          and (kw["path"] is None or isinstance(kw["path"], Path) and kw["path"].suffix == ".json"
               and "results" in kw["path"].name)
          and json_ok(kw["val_perplexity"]) and json_ok(kw["control_interval"]))

    def oracle(row: dict[str, Any]) -> None:
        rows = results.load_results(target)
        assert rows[-1] == row
        old = content if content is None else content.lstrip("\ufeff")
        if old == json.dumps([OLD_ROW]):
            assert rows[0] == OLD_ROW  # the earlier row is still there
        elif old is not None:
            kept = [p.read_text(encoding="utf-8") for p in target.parent.glob("*.unreadable-*")]
            assert content in kept  # an unreadable file is kept, byte for byte

    row = call(results.record_result, kw, ok, oracle)
    if row is None:  # refused: nothing in the work directory changed
        assert {p.name: p.read_bytes() for p in sandbox.iterdir() if p.is_file() and p.suffix != ".lock"} == {
            k: v for k, v in before.items() if not k.endswith(".lock")}
    for p in sandbox.iterdir():  # the next example starts from an empty work directory
        if p.is_file():
            p.unlink()


def is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) and math.isfinite(v)


def json_ok(v: Any) -> bool:
    if v is None or isinstance(v, str | bool) or is_number(v):
        return True
    if isinstance(v, dict):
        return all(isinstance(k, str) and json_ok(x) for k, x in v.items())
    return isinstance(v, list | tuple) and all(json_ok(x) for x in v)


# --- plots ---------------------------------------------------------------------------------------------------------

@settings(max_examples=FEW)
@given(kw=args(y_true=maybe([0, 1, 1, 0]), y_pred=maybe(np.array([[0.2], [0.9], [0.6], [0.4]]) >= 0.5)))
def test_confusion_matrix_counts_each_review_once(sandbox: Path, kw: dict[str, Any]) -> None:
    truth, pred = labels01(kw["y_true"]), labels01(kw["y_pred"])
    ok = truth is not None and pred is not None and len(truth) == len(pred) > 0 and not isinstance(
        kw["y_pred"], str) and numbers(kw["y_true"]) is not None

    def oracle(fig: Any) -> None:
        counts = np.zeros((2, 2), dtype=int)
        np.add.at(counts, (truth, pred), 1)
        shown = [int(t.get_text().split("\n")[0].replace(",", "")) for t in fig.axes[0].texts]
        assert shown == counts.ravel().tolist() and f"(n = {len(truth):,})" in fig.axes[0].get_title()

    call(plots.confusion_matrix, kw, ok, oracle)


@settings(max_examples=FEW)
@given(kw=args(names=maybe(["TF-IDF", "LSTM"]), values=maybe([89.5, 87.0]), reference=maybe(50.0)))
def test_comparison_bar_draws_one_bar_per_name(sandbox: Path, kw: dict[str, Any]) -> None:
    def oracle(fig: Any) -> None:
        assert len(fig.axes[0].patches) == len(kw["names"])

    call(plots.comparison_bar, kw, None, oracle)


@settings(max_examples=FEW)
@given(kw=args(history=maybe({"loss": [0.7, 0.5], "val_loss": [0.72, 0.6]}, {"loss": []}, {"loss": [1, 2], "val_loss": [1]},
                             {"loss": "0.5"}, {"val_loss": [0.5]})))
def test_training_curves_plots_each_metric(sandbox: Path, kw: dict[str, Any]) -> None:
    call(plots.training_curves, kw, None, lambda fig: None)


# --- batching and sequences ----------------------------------------------------------------------------------------

@given(kw=args(lengths=maybe([5, 3, 9, 1, 4]), batch_size=maybe(2), shuffle=st.booleans()))
def test_length_batches_partition_the_indices(sandbox: Path, kw: dict[str, Any]) -> None:
    lengths = numbers(kw["lengths"])
    ok = (lengths is not None and is_int(kw["batch_size"]) and np.all(lengths >= 0)
          and np.all(lengths == np.round(lengths)) and not (isinstance(kw["lengths"], list) and kw["lengths"]
                                                             and not is_int(kw["lengths"][0], -10**9)))

    def oracle(batches: list[np.ndarray]) -> None:
        flat = np.concatenate(batches) if batches else np.zeros(0, int)
        assert sorted(flat.tolist()) == list(range(len(lengths)))
        assert all(0 < len(b) <= kw["batch_size"] for b in batches)

    call(bert.length_batches, kw, None if ok else False, oracle)


@given(kw=args(seqs=maybe([[1, 2, 3], [4], [], [5, 6]], np.array([np.array([1, 2]), np.array([3])], dtype=object)),
               labels=maybe([0, 1, 1, 0]), batch_size=maybe(2), step=maybe(8)))
def test_bucket_batches_cover_every_row_once(sandbox: Path, kw: dict[str, Any]) -> None:
    seqs = id_lists(kw["seqs"])
    labels = numbers(kw["labels"])
    ok = (seqs is not None and labels is not None and len(seqs) == len(labels) and is_int(kw["batch_size"])
          and is_int(kw["step"]) and np.isfinite(labels).all())

    def oracle(batches: list[sequences.Batch]) -> None:
        flat = np.concatenate([b.index for b in batches]) if batches else np.zeros(0, int)
        assert sorted(flat.tolist()) == list(range(len(labels)))
        for b in batches:
            assert len(b.index) <= kw["batch_size"] and b.x.shape[1] % kw["step"] == 0
            for row, i in enumerate(b.index):
                seq = list(seqs[i]) or [1]  # an empty sequence reads as one [UNK]
                assert b.x[row, : len(seq)].tolist() == seq and not b.x[row, len(seq):].any()
                assert b.y[row] == np.float32(labels[i])

    call(sequences.bucket_batches, kw, None if ok else False, oracle)


@given(kw=args(seqs=maybe([[1, 2, 3, 4], [5], []]), max_len=maybe(2)))
def test_keep_last_keeps_the_end(sandbox: Path, kw: dict[str, Any]) -> None:
    seqs = id_lists(kw["seqs"])
    ok = seqs is not None and is_int(kw["max_len"])
    call(sequences.keep_last, kw, None if ok else False,
         lambda out: [o.tolist() for o in out] == [s[-kw["max_len"]:] for s in seqs] or pytest.fail("wrong ending"))


@given(kw=args(probs=maybe(np.array([[0.9], [0.2], [0.6], [0.4]])), labels=maybe([0, 1, 1, 0]), k=maybe(2)))
def test_most_confident_errors_are_errors(sandbox: Path, kw: dict[str, Any]) -> None:
    probs, labels = numbers(kw["probs"]), labels01(kw["labels"])
    ok = (probs is not None and labels is not None and len(probs) == len(labels) and is_int(kw["k"], 0)
          and np.all((probs >= 0) & (probs <= 1)))

    def oracle(idx: np.ndarray) -> None:
        assert len(idx) <= kw["k"] and all((probs[i] >= 0.5) != (labels[i] == 1) for i in idx)

    call(sequences.most_confident_errors, kw, None if ok else False, oracle)


@given(kw=args(ids=maybe(list(range(10))), max_tokens=maybe(6), head=maybe(2)))
def test_head_tail_keeps_head_and_tail(sandbox: Path, kw: dict[str, Any]) -> None:
    def oracle(out: list[int]) -> None:
        ids = list(kw["ids"])
        assert len(out) == min(len(ids), kw["max_tokens"]) and out[: min(kw["head"], len(out))] == ids[: min(
            kw["head"], len(out))]

    call(bert.head_tail, kw, None, oracle)


@pytest.fixture(scope="module")
def torch_loaded() -> None:
    import torch  # noqa: F401 - imported once here: its first import can take longer than a call's time limit


@given(kw=args(seqs=maybe([[101, 7, 102], [101, 102]]), multiple_of=maybe(8), pad_id=maybe(0)))
def test_pad_batch_pads_every_row(sandbox: Path, torch_loaded: None, kw: dict[str, Any]) -> None:
    seqs = id_lists(kw["seqs"])
    ok = bool(seqs) and is_int(kw["multiple_of"]) and is_int(kw["pad_id"], 0)

    def oracle(batch: dict[str, Any]) -> None:
        width = batch["input_ids"].shape[1]
        assert batch["input_ids"].shape[0] == len(seqs) and width % kw["multiple_of"] == 0
        assert batch["attention_mask"].sum(dim=1).tolist() == [len(s) for s in seqs]

    call(bert.pad_batch, kw, None if ok else False, oracle)


class FakeTokenizer:
    """Word-level stand-in for a Hugging Face tokenizer: one id per whitespace-separated word."""

    cls_token_id, sep_token_id = 101, 102

    def __call__(self, texts: list[str], **_: Any) -> dict[str, list[list[int]]]:
        assert isinstance(texts, list)
        return {"input_ids": [[1000 + len(w) for w in t.split()] for t in texts]}


@given(kw=args(texts=maybe(["a good film", "bad and long and dull"]), max_length=maybe(5), head=maybe(1)))
def test_bert_encode_gives_one_sequence_per_text(sandbox: Path, kw: dict[str, Any]) -> None:
    ok = is_texts(kw["texts"]) and is_int(kw["max_length"], 3) and is_int(kw["head"], 0) and kw["head"] <= kw[
        "max_length"] - 2

    def oracle(out: list[list[int]]) -> None:
        assert len(out) == len(kw["texts"]) and all(s[0] == 101 and s[-1] == 102 and len(s) <= kw["max_length"]
                                                    for s in out)

    call(bert.encode, {"tokenizer": FakeTokenizer(), **kw}, None if ok else False, oracle)


# --- language-model helpers ----------------------------------------------------------------------------------------

@given(kw=args(logprobs=maybe(np.log([0.5, 0.25, 0.125]), [-1.0, -2.0], np.array([[-0.1], [-0.3]]))))
def test_perplexity_of_log_probabilities(sandbox: Path, kw: dict[str, Any]) -> None:
    values = flat_numbers(kw["logprobs"])
    ok = values is not None and len(values) > 0 and not np.isnan(values).any() and np.all(values <= 1e-4)

    def oracle(ppl: float) -> None:
        with np.errstate(over="ignore"):
            assert ppl >= 0.999 and math.isclose(ppl, float(np.exp(-values.mean())), rel_tol=1e-9)

    call(lm.perplexity, kw, None if ok else False, oracle)


@given(kw=args(successes=maybe(8), n=maybe(10), z=maybe(1.96)))
def test_wilson_interval_contains_the_rate(sandbox: Path, kw: dict[str, Any]) -> None:
    ok = is_int(kw["n"]) and is_int(kw["successes"], 0) and kw["successes"] <= kw["n"] and is_number(kw["z"]) and kw[
        "z"] > 0

    def oracle(interval: tuple[float, float]) -> None:
        low, high = interval
        assert 0 <= low <= kw["successes"] / kw["n"] <= high <= 1

    call(lm.wilson_interval, kw, ok, oracle)


STREAM = np.arange(20, dtype=np.int32) % 7


@given(kw=args(tokens=maybe(STREAM), conds=maybe(np.zeros(20, np.int8)), context=maybe(4)))
def test_sequential_windows_are_shifted_by_one(sandbox: Path, kw: dict[str, Any]) -> None:
    def oracle(out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        x, y, c = out
        assert x.shape == y.shape == c.shape and x.shape[1] == kw["context"]
        assert np.array_equal(np.asarray(kw["tokens"])[1: x.size + 1].reshape(x.shape), y)

    call(lm.sequential_windows, kw, None, oracle)


@given(kw=args(train_tokens=maybe(STREAM), prev=maybe(STREAM[:5]), targets=maybe(STREAM[1:6]), vocab_size=maybe(7),
               discount=maybe(0.75)))
def test_bigram_logprobs_are_log_probabilities(sandbox: Path, kw: dict[str, Any]) -> None:
    def oracle(logp: np.ndarray) -> None:
        assert np.all(logp <= 0) and np.all(np.isfinite(logp)) and logp.shape == np.shape(kw["targets"])

    call(lm.bigram_logprobs, kw, None, oracle)
    uni = {k: kw[k] for k in ("train_tokens", "targets", "vocab_size")}
    call(lm.unigram_logprobs, uni, None, lambda logp: np.all(logp <= 0) or pytest.fail("not log-probabilities"))


CORPUS = [f"the movie was {w} and the actors were {v}" for w in ("great", "awful") for v in ("superb", "wooden")] * 5


@settings(max_examples=FEW)
@given(kw=args(texts=maybe(CORPUS), name=maybe("fuzz-bpe", "../escape", "../../x", "/tmp/abs", ".hidden")))
def test_train_bpe_and_encode_read_a_list_of_texts(sandbox: Path, kw: dict[str, Any]) -> None:
    name = kw["name"]
    plain = isinstance(name, str) and name == name.strip() and name and not name.startswith(".") and not any(
        ch in name for ch in "/\\:\0")
    ok = is_texts(kw["texts"]) and len(kw["texts"]) > 0 and plain
    tokenizer = call(lm.train_bpe, {**kw, "vocab_size": 300, "verbose": False}, None if ok else False)
    if tokenizer is not None:
        call(lm.encode, {"tokenizer": tokenizer, "texts": kw["texts"]}, True,
             lambda ids: len(ids) == len(kw["texts"]) or pytest.fail("one id array per text"))


# --- word vectors --------------------------------------------------------------------------------------------------

class FakeModel:
    """What a learner has in hand after training: a model whose ``.wv`` holds the vectors."""

    def __init__(self, wv: Any):
        self.wv = wv


@pytest.fixture(scope="module")
def small_wv() -> Any:
    return embeddings.keyed_vectors(["good", "bad", "film"], np.eye(3, dtype=np.float32))


@settings(max_examples=FEW)
@given(kw=args(texts=maybe(["a good film", "bad"]), name=maybe("custom", "../../x", "../escape", "a/b", "")),
       model=st.booleans())
def test_word_vector_helpers(sandbox: Path, small_wv: Any, kw: dict[str, Any], model: bool) -> None:
    wv = FakeModel(small_wv) if model else small_wv
    ok = is_texts(kw["texts"]) and not model
    call(embeddings.mean_vectors, {"wv": wv, "texts": kw["texts"]}, ok,
         lambda f: f.shape == (len(kw["texts"]), 3) or pytest.fail("one row per text"))
    call(embeddings.token_ids, {"texts": kw["texts"], "key_to_index": small_wv.key_to_index}, is_texts(kw["texts"]),
         lambda ids: len(ids) == len(kw["texts"]) or pytest.fail("one array per text"))
    saved = call(embeddings.save_vectors, {"wv": wv, "name": kw["name"], "size": "small"}, None)
    assert saved is None or saved.resolve().is_relative_to(sandbox.resolve())


@given(kw=args(docs=maybe([np.array([0, 1, 2]), np.array([2, -1, 0])], np.array([0, 1, 2])), vocab_size=maybe(3),
               window=maybe(2, 10**6, 10**9)))
def test_cooccurrence_matrix_matches_a_loop(sandbox: Path, kw: dict[str, Any]) -> None:
    docs = id_lists(kw["docs"], -1) if isinstance(kw["docs"], list) else None
    ok = (docs is not None and is_int(kw["vocab_size"]) and is_int(kw["window"])
          and all(i < kw["vocab_size"] for d in docs for i in d))

    def oracle(matrix: Any) -> None:
        expected: dict[tuple[int, int], float] = {}
        for doc in docs:
            for i, a in enumerate(doc):
                for j in range(i + 1, min(len(doc), i + kw["window"] + 1)):
                    if a >= 0 and doc[j] >= 0:
                        for pair in ((a, doc[j]), (doc[j], a)):
                            expected[pair] = expected.get(pair, 0.0) + 1 / (j - i)
        coo = matrix.tocoo()
        got = {(int(i), int(j)): float(v) for i, j, v in zip(coo.row, coo.col, coo.data, strict=True) if v}
        assert matrix.shape == (kw["vocab_size"],) * 2 and got.keys() == expected.keys()
        assert all(math.isclose(got[k], expected[k], rel_tol=1e-5) for k in got)

    call(embeddings.cooccurrence_matrix, kw, None if ok else False, oracle)


# --- loading data and seeding --------------------------------------------------------------------------------------

@pytest.fixture
def tiny_imdb(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    n = 40
    raw = tiny_raw(n)
    monkeypatch.setattr(data, "_raw_for_splits", lambda verbose=True, n_unsup=None: raw)
    monkeypatch.setattr(data, "VALIDATION_SIZE", 4)
    monkeypatch.setattr(data, "TEST_SUBSET_SIZE", 4)
    return raw


@given(kw=args(n_train=maybe(None, 10), n_unsup=maybe(None, 0, 5), seed=maybe(0)))
def test_load_imdb_sizes(sandbox: Path, tiny_imdb: dict[str, Any], kw: dict[str, Any]) -> None:
    def oracle(imdb: data.Imdb) -> None:
        if kw["n_train"] is not None:
            assert len(imdb.train) == kw["n_train"]
        assert len(imdb.unsup) == (10 if kw["n_unsup"] is None else min(kw["n_unsup"], 10))

    ok = ((kw["n_train"] is None or is_int(kw["n_train"]) and kw["n_train"] <= 36)
          and (kw["n_unsup"] is None or is_int(kw["n_unsup"], 0)) and is_int(kw["seed"], 0))
    call(data.load_imdb, {**kw, "verbose": False}, None if ok else False, oracle)


@given(kw=args(seed=maybe(42)))
def test_seed_everything_takes_a_numpy_seed(sandbox: Path, kw: dict[str, Any]) -> None:
    ok = is_int(kw["seed"], 0) and kw["seed"] < 2**32
    call(runtime.seed_everything, kw, ok, lambda seed: seed == kw["seed"] or pytest.fail("returns the seed"))
