"""How fast this machine runs the series: a short probe, and each notebook's expected time scaled from a reference run.

``probe`` times a fixed pure-Python workload (tokenising and counting, like vocabulary building) and a fixed float32
matrix-multiply workload through NumPy's BLAS with the threads the notebooks use. A notebook's time on another
machine is modelled as T_ref x ((1 - w) x python_here / python_ref + w x gemm_here / gemm_ref), where w, its compute
share, comes from running the bench on 2 cores and on one CPU (``scripts/tools/calibrate_estimate.py``).
NumPy only: no torch or TensorFlow, so the preflight stays light.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import runtime
from . import validate as check

REFERENCE = Path(__file__).with_name("speed_reference.json")  # written by scripts/tools/calibrate_estimate.py
REPEATS = 3  # each workload is timed up to this many times; the best counts
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fe", "go", "hu", "ji", "pe", "zo")
_TEXTS, _WORDS_PER_TEXT, _PASSES = 400, 200, 10  # 800,000 tokens per timed run
_ROWS, _WIDTH, _HIDDEN, _ROUNDS = 2048, 384, 1536, 6  # a small transformer's MLP block, forward and back out: 29 GFLOP


class SpeedReferenceError(ValueError):
    """The reference file is missing a field or holds a value the estimate cannot use."""


@functools.cache
def _corpus() -> tuple[str, ...]:
    """400 review-like texts of 200 words (4,096-word vocabulary, some punctuation), the same on every machine."""
    vocab = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES]
    texts, k = [], 12345
    for i in range(_TEXTS):
        words = []
        for j in range(_WORDS_PER_TEXT):
            k = (k * 1103515245 + 12345) % 2**31
            word = vocab[(k >> 8) % len(vocab)]
            words.append(word.capitalize() + "." if j % 17 == 16 else word + ("," if j % 11 == 5 else ""))
        texts.append(" ".join(words) + (" <br /><br />" if i % 3 == 0 else ""))
    return tuple(texts)


def _python_work() -> int:
    """Tokenise the corpus ``_PASSES`` times, counting words and word pairs in dicts; return the vocabulary size."""
    counts: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    for _ in range(_PASSES):
        for text in _corpus():
            previous = ""
            for token in text.replace("<br />", " ").lower().split():
                word = token.strip(".,!?")
                counts[word] = counts.get(word, 0) + 1
                pairs[previous, word] = pairs.get((previous, word), 0) + 1
                previous = word
    return len(counts)


def _gemm_work(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, hidden: np.ndarray, out: np.ndarray, rounds: int) -> None:
    """``rounds`` times x @ w1 -> hidden and hidden @ w2 -> out, in place (float32, BLAS)."""
    for _ in range(rounds):
        np.matmul(x, w1, out=hidden)
        np.matmul(hidden, w2, out=out)


def _best(work: Callable[[], object], deadline: float) -> float:
    """The fastest of up to ``REPEATS`` timed runs of ``work``: always one, more while ``deadline`` is ahead."""
    best = math.inf
    for i in range(REPEATS):
        if i and time.perf_counter() >= deadline:
            break
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


@contextmanager
def _blas_threads(n: int) -> Iterator[None]:
    """NumPy's BLAS limited to ``n`` threads (threadpoolctl, which scikit-learn brings); unchanged where it is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # helpers sized the pool through OPENBLAS_NUM_THREADS and friends on import already
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def probe(budget_s: float = 3.0) -> dict[str, float]:
    """Seconds for the fixed Python and float32 matrix-product workloads (best of up to 3 within ``budget_s``), and the CPUs."""
    budget_s = check.number(budget_s, "budget_s", minimum=0.01, hint="Pass the seconds the probe may take, e.g. 3.0.")
    cpus = runtime.usable_cpus()
    start = time.perf_counter()
    _corpus()
    python_s = _best(_python_work, start + budget_s / 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((_ROWS, _WIDTH), dtype=np.float32)
    w1 = rng.standard_normal((_WIDTH, _HIDDEN), dtype=np.float32) / np.float32(math.sqrt(_WIDTH))
    w2 = rng.standard_normal((_HIDDEN, _WIDTH), dtype=np.float32) / np.float32(math.sqrt(_HIDDEN))
    hidden = np.empty((_ROWS, _HIDDEN), dtype=np.float32)
    out = np.empty((_ROWS, _WIDTH), dtype=np.float32)
    with _blas_threads(cpus):
        _gemm_work(x, w1, w2, hidden, out, 1)  # warm-up: the BLAS thread pool starts
        gemm_s = _best(lambda: _gemm_work(x, w1, w2, hidden, out, _ROUNDS), start + budget_s)
    return {"python_s": round(python_s, 4), "gemm_s": round(gemm_s, 4), "cpus": cpus}


def compute_share(seconds_ratio: float, gemm_ratio: float) -> float:
    """A notebook's compute share w = (T_1cpu / T_2cores - 1) / (gemm_1cpu / gemm_2cores - 1), clipped to [0, 1]."""
    seconds_ratio = check.number(seconds_ratio, "seconds_ratio", minimum=0.0)
    gemm_ratio = check.number(gemm_ratio, "gemm_ratio", hint="Pass gemm_1cpu / gemm_2cores, above 1.")
    if gemm_ratio <= 1:
        raise ValueError(f"gemm_ratio must be above 1 (matrix products slower on one CPU than on two), got {gemm_ratio:g}")
    return min(1.0, max(0.0, (seconds_ratio - 1) / (gemm_ratio - 1)))


def _positive(value: Any, where: str) -> float:
    """``value`` as a positive finite float, else a ``SpeedReferenceError`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise SpeedReferenceError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_reference(reference: Any, source: str = "the reference") -> dict:
    """``reference`` if it has a probe and per notebook seconds > 0 and a compute share in [0, 1], else an error."""
    if not isinstance(reference, dict):
        raise SpeedReferenceError(f"{source} must hold a JSON object, got {type(reference).__name__}")
    ref_probe = reference.get("probe")
    if not isinstance(ref_probe, dict):
        raise SpeedReferenceError(f"{source} has no probe (a 'probe' object with python_s and gemm_s)")
    for key in ("python_s", "gemm_s"):
        _positive(ref_probe.get(key), f"{source}: probe.{key}")
    notebooks = reference.get("notebooks")
    if not isinstance(notebooks, dict) or not notebooks:
        raise SpeedReferenceError(f"{source} has no notebooks (a 'notebooks' object of seconds and compute_share)")
    for name, entry in notebooks.items():
        if not isinstance(entry, dict):
            raise SpeedReferenceError(f"{source}: notebooks.{name} must be an object, got {entry!r}")
        _positive(entry.get("seconds"), f"{source}: notebooks.{name}.seconds")
        share = entry.get("compute_share")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise SpeedReferenceError(f"{source}: notebooks.{name}.compute_share must be a number in [0, 1], got {share!r}")
    return reference


def load_reference(path: str | Path = REFERENCE) -> dict:
    """The reference (JSON) at ``path``, checked; ``FileNotFoundError`` when absent, ``SpeedReferenceError`` when unusable."""
    path = check.path(path, "path")
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpeedReferenceError(f"{path} is not valid JSON ({err})") from None
    return check_reference(reference, str(path))


def expected_seconds(reference: dict, here: Mapping[str, float]) -> dict[str, float]:
    """Each notebook's expected seconds on the machine whose probe is ``here``, scaled from ``reference``."""
    reference = check_reference(reference)
    if not isinstance(here, Mapping):
        raise TypeError(f"here must be a probe (a dict with python_s and gemm_s), got {check.describe(here)}")
    python = check.number(here.get("python_s"), "here['python_s']", minimum=1e-9) / reference["probe"]["python_s"]
    gemm = check.number(here.get("gemm_s"), "here['gemm_s']", minimum=1e-9) / reference["probe"]["gemm_s"]
    return {name: entry["seconds"] * ((1 - entry["compute_share"]) * python + entry["compute_share"] * gemm)
            for name, entry in reference["notebooks"].items()}
