"""Presets, seeding, the environment report, the bfloat16 decision and exercise checks (results: test_results.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import helpers
from helpers import exercises, runtime


def test_preset_default_override_and_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.PRESET_ENV, raising=False)
    assert runtime.preset() == "small"
    monkeypatch.setenv(runtime.PRESET_ENV, " FULL ")
    assert runtime.preset() == "full"
    monkeypatch.setenv(runtime.PRESET_ENV, "huge")
    with pytest.raises(ValueError, match="small, full"):
        runtime.preset()


def test_seed_everything_makes_python_and_numpy_repeatable() -> None:
    runtime.seed_everything(7)
    first = (random.random(), np.random.rand())
    runtime.seed_everything(7)
    assert (random.random(), np.random.rand()) == first


def test_seed_everything_needs_no_hash_seed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)  # as on Colab: nothing to act on, so nothing is printed
    runtime.seed_everything(1)
    assert capsys.readouterr().out == ""


def test_environment_report_names_machine_preset_and_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.PRESET_ENV, raising=False)
    report = runtime.environment_report(packages=("numpy", "surely_not_a_package"))
    assert "CPU cores" in report and "preset: small" in report
    assert f"numpy {np.__version__}" in report and "surely_not_a_package not installed" in report


def test_exercise_check_reports_each_state(capsys: pytest.CaptureFixture[str]) -> None:
    def unattempted() -> int:
        raise NotImplementedError

    assert exercises.check("Ex", None, lambda a: True, hint="h") is False
    assert exercises.check("Ex", unattempted, lambda f: f() == 2) is False
    assert exercises.check("Ex", lambda: 1 / 0, lambda f: f() == 2) is False
    assert exercises.check("Ex", 3, lambda a: a == 2, hint="try 2") is False
    assert exercises.check("Ex", 2, lambda a: a == 2) is True
    out = capsys.readouterr().out.splitlines()
    assert out == ["Ex: not attempted yet. h", "Ex: not attempted yet.",
                   "Ex: your attempt raised ZeroDivisionError: division by zero", "Ex: not quite yet. try 2",
                   "Ex: correct, well done!"]


def test_package_exports() -> None:
    assert callable(helpers.load_imdb) and callable(helpers.record_result) and callable(helpers.environment_report)


# --- bfloat16: one decision per framework -------------------------------------------------------------------

ZEN4_FLAGS = {"avx2", "avx512f", "avx512_bf16"}  # AMD EPYC (Zen 4): AVX-512 BF16, no AMX
SAPPHIRE_RAPIDS_FLAGS = {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
PLAIN_FLAGS = {"avx2", "fma"}


def test_cpu_flags_reads_the_flags_line() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n"
    assert runtime.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert runtime.cpu_flags("no flags here") == set()


@pytest.mark.parametrize(("flags", "torch_bf16", "tf_bf16"), [
    (SAPPHIRE_RAPIDS_FLAGS, True, True),  # AMX: both frameworks
    (ZEN4_FLAGS, True, False),  # AVX-512 BF16 alone: PyTorch yes, TensorFlow no (slower there)
    (PLAIN_FLAGS, False, False),  # emulated: neither
])
def test_bfloat16_choice_follows_the_cpu(monkeypatch: pytest.MonkeyPatch, flags: set[str], torch_bf16: bool,
                                         tf_bf16: bool) -> None:
    monkeypatch.delenv(runtime.PRECISION_ENV, raising=False)
    for framework, expected in (("torch", torch_bf16), ("tensorflow", tf_bf16)):
        use, why = runtime.bfloat16_choice(framework, flags=flags, gpu_bf16=False)
        assert use is expected and why.startswith("the CPU has"), why


def test_bfloat16_choice_uses_a_capable_gpu_and_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.PRECISION_ENV, raising=False)
    assert runtime.bfloat16_choice("tensorflow", flags=PLAIN_FLAGS, gpu_bf16=True) == (
        True, "the GPU computes in bfloat16 natively")
    monkeypatch.setenv(runtime.PRECISION_ENV, "float32")
    assert runtime.bfloat16_choice("torch", flags=SAPPHIRE_RAPIDS_FLAGS, gpu_bf16=True)[0] is False
    monkeypatch.setenv(runtime.PRECISION_ENV, " BFloat16 ")
    use, why = runtime.bfloat16_choice("tensorflow", flags=PLAIN_FLAGS, gpu_bf16=False)
    assert use is True and runtime.PRECISION_ENV in why
    monkeypatch.setenv(runtime.PRECISION_ENV, "fp8")
    with pytest.raises(ValueError, match="auto, float32 or bfloat16"):
        runtime.bfloat16_choice("torch")
    with pytest.raises(ValueError, match="'torch' or 'tensorflow'"):
        runtime.bfloat16_choice("jax")


def test_peak_memory_is_a_plausible_number_of_gigabytes() -> None:
    import psutil

    peak = runtime.peak_memory_gb()
    assert psutil.Process().memory_info().rss / 1024**3 * 0.9 <= peak < 64


def test_seed_can_be_overridden_to_check_claims_across_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.SEED_ENV, raising=False)
    assert runtime.seed_everything(42) == 42
    monkeypatch.setenv(runtime.SEED_ENV, "7")
    assert runtime.seed_everything(42) == 7
    monkeypatch.setenv(runtime.SEED_ENV, "seven")
    with pytest.raises(ValueError, match="DLNLP_SEED='seven' is not a whole number"):
        runtime.seed_everything(42)
