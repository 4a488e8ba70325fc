"""Unit tests for helpers.runtime.faster_precision: precision chosen by timing, with a fake timer."""

from __future__ import annotations

import itertools

import pytest

from helpers import runtime


def fake_timer(float32_s: float, bfloat16_s: float, repeats: int = 3):
    """A clock that advances by float32_s per timed float32 call and bfloat16_s per timed bfloat16 call."""
    steps = [d for per_call in (float32_s, bfloat16_s) for _ in range(repeats) for d in (per_call, 0.0)]
    ticks = itertools.accumulate([0.0, *steps])
    return lambda: next(ticks)


@pytest.mark.parametrize("f32, bf16, expected", [(1.0, 0.5, True), (0.5, 1.0, False), (1.0, 0.97, False)])
def test_faster_precision_picks_the_faster_one(monkeypatch, f32, bf16, expected) -> None:
    monkeypatch.delenv(runtime.PRECISION_ENV, raising=False)
    calls = []
    use_bf16, seconds = runtime.faster_precision(calls.append, timer=fake_timer(f32, bf16))
    assert use_bf16 is expected  # within the 5 % margin float32 stays
    assert seconds == pytest.approx({"float32": f32, "bfloat16": bf16})
    assert calls == [False] * 4 + [True] * 4  # a warm-up and three timed calls each


def test_faster_precision_obeys_the_override_and_rejects_bad_input(monkeypatch) -> None:
    monkeypatch.setenv(runtime.PRECISION_ENV, "float32")
    assert runtime.faster_precision(lambda b: None, timer=fake_timer(1.0, 0.1))[0] is False
    monkeypatch.setenv(runtime.PRECISION_ENV, "half")
    with pytest.raises(ValueError, match="not a precision"):
        runtime.faster_precision(lambda b: None)
    monkeypatch.delenv(runtime.PRECISION_ENV)
    with pytest.raises(ValueError, match="repeats"):
        runtime.faster_precision(lambda b: None, repeats=0)
    with pytest.raises(ValueError, match="step must be"):
        runtime.faster_precision("fast")


@pytest.mark.parametrize("f32, bf16, expected", [(1.0, 0.5, "mixed_bfloat16"), (0.5, 1.0, "float32")])
def test_keras_faster_precision_times_a_real_model_and_sets_the_policy(monkeypatch, capsys, f32, bf16, expected) -> None:
    import keras
    import numpy as np

    monkeypatch.delenv(runtime.PRECISION_ENV, raising=False)
    built = []

    def build():
        built.append(keras.mixed_precision.global_policy().name)
        return keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid", dtype="float32")])

    x, y = np.zeros((8, 4), dtype="float32"), np.ones(8, dtype="float32")
    try:
        policy = runtime.keras_faster_precision(build, x, y, repeats=3, timer=fake_timer(f32, bf16))
        assert policy == expected and keras.mixed_precision.global_policy().name == expected
        assert built == ["float32", "mixed_bfloat16"]  # one model per policy, built under it
        assert "from here on Keras computes in" in capsys.readouterr().out
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ValueError, match="build must be"):
        runtime.keras_faster_precision("model", x, y)


def test_release_memory_returns_freed_heap_to_the_system() -> None:
    import sys

    import psutil

    from helpers.runtime import release_memory

    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # about 190 MB in heap-sized chunks, below mmap's threshold
    keep = blocks[::50]  # a few survivors in between, as a real program leaves them
    del blocks
    before = psutil.Process().memory_info().rss
    result = release_memory()
    after = psutil.Process().memory_info().rss
    assert result in (0, 1) and keep
    if sys.platform.startswith("linux") and result == 1:
        assert after < before  # glibc handed pages back
