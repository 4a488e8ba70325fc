"""Reproducibility and run settings: seeds, the size preset, and an environment report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys

import numpy as np

from . import validate as check

PRESET_ENV = "DLNLP_PRESET"
SEED_ENV = "DLNLP_SEED"  # overrides a notebook's seed, to check its claims across seeds
PRECISION_ENV = "DLNLP_PRECISION"  # auto (default), float32 or bfloat16
PRESETS = ("small", "full")
_REPORTED_PACKAGES = ("numpy", "tensorflow", "keras", "torch", "transformers", "gensim", "scikit-learn", "matplotlib")


def preset() -> str:
    """The size preset from ``$DLNLP_PRESET``: ``small`` (default, a 2-core CPU) or ``full`` (a GPU)."""
    value = os.environ.get(PRESET_ENV, "small").strip().lower() or "small"
    if value not in PRESETS:
        raise ValueError(f"{PRESET_ENV}={value!r} is not a preset; use one of {', '.join(PRESETS)}.")
    return value


def seed_everything(seed: int = 42) -> int:
    """Seed Python, NumPy, Keras and PyTorch (when imported) with ``seed``, or ``$DLNLP_SEED`` if set; return it."""
    if os.environ.get(SEED_ENV, "").strip():
        try:
            seed = int(os.environ[SEED_ENV])
        except ValueError:
            raise ValueError(f"{SEED_ENV}={os.environ[SEED_ENV]!r} is not a whole number; unset it or set e.g. "
                             f"{SEED_ENV}=7.") from None
    seed = check.integer(seed, "seed", 0, 2**32 - 1, hint="NumPy accepts seeds from 0 to 2**32 - 1.")
    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)  # seeds Python, NumPy and the backend
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
    return seed


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (``avx512_bf16``, ``amx_bf16``, ...) from ``/proc/cpuinfo``; empty where unknown."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as fh:
                cpuinfo = fh.read()
        except OSError:  # macOS, Windows: no cpuinfo, so no bfloat16 claim is made for the CPU
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def bfloat16_choice(framework: str, flags: set[str] | None = None, gpu_bf16: bool | None = None) -> tuple[bool, str]:
    """Whether ``framework`` (``"torch"`` or ``"tensorflow"``) should compute in bfloat16 here, and why (one sentence).

    PyTorch's CPU kernels use AVX-512 BF16 and AMX; TensorFlow's use AMX only (with AVX-512 BF16 alone a Keras
    GRU step ran 1.8x slower in bfloat16 than in float32). ``$DLNLP_PRECISION`` (float32 or bfloat16) overrides.
    """
    if framework not in ("torch", "tensorflow"):
        raise ValueError(f"framework must be 'torch' or 'tensorflow', got {framework!r}")
    forced = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
    if forced not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"{PRECISION_ENV}={forced!r} is not a precision; use auto, float32 or bfloat16.")
    if forced != "auto":
        return forced == "bfloat16", f"{PRECISION_ENV}={forced} asks for it"
    if gpu_bf16 is None:
        gpu_bf16 = _gpu_bf16(framework)
    if gpu_bf16:
        return True, "the GPU computes in bfloat16 natively"
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return True, "the CPU has AMX, whose tile units multiply bfloat16 matrices natively"
    if framework == "torch" and "avx512_bf16" in flags:
        return True, "the CPU has AVX-512 BF16, which PyTorch's kernels use for bfloat16 matrix products"
    if "avx512_bf16" in flags:
        return False, "the CPU has AVX-512 BF16 but no AMX, and TensorFlow's kernels are slower in bfloat16 without AMX"
    return False, "the CPU has neither AVX-512 BF16 nor AMX, so bfloat16 would be emulated and slower"


def _gpu_bf16(framework: str) -> bool:
    if framework == "torch" and "torch" in sys.modules:
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if framework == "tensorflow" and "tensorflow" in sys.modules:
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
            if tuple(capability) >= (8, 0):  # Ampere and newer
                return True
    return False


def keras_faster_precision(build, x, y, repeats: int = 2, verbose: bool = True, timer=None) -> str:
    """Time training steps of ``build()`` on one batch (x, y) under float32 and mixed_bfloat16; set and return the faster.

    ``build`` returns an uncompiled Keras model; each policy gets its own (built after ``clear_session`` under that
    policy, compiled with Adam and binary cross-entropy). ``$DLNLP_PRECISION`` overrides, as in ``faster_precision``.
    """
    import keras

    if not callable(build):
        raise ValueError(f"build must be a function that returns a Keras model, got {type(build).__name__}")
    models: dict[str, object] = {}

    def step(use_bf16: bool) -> None:
        policy = "mixed_bfloat16" if use_bf16 else "float32"
        if policy not in models:  # the untimed warm-up call builds, compiles and traces the model
            keras.backend.clear_session()
            keras.mixed_precision.set_global_policy(policy)
            models[policy] = build()
            models[policy].compile(optimizer="adam", loss="binary_crossentropy")
        models[policy].train_on_batch(x, y)

    use, seconds = faster_precision(step, repeats=repeats, timer=timer)
    policy = "mixed_bfloat16" if use else "float32"
    models.clear()
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)
    if verbose:
        print("Keras training step on one batch: " + ", ".join(f"{k} {1000 * s:.0f} ms" for k, s in seconds.items())
              + f"; from here on Keras computes in {'bfloat16 (policy mixed_bfloat16)' if use else 'float32'}")
    return policy


def peak_memory_gb() -> float:
    """The peak resident memory of this process so far, in GB (Linux, macOS and Windows)."""
    try:
        import resource
    except ImportError:  # Windows: psutil reads the peak working set
        import psutil

        return psutil.Process().memory_info().peak_wset / 1024**3
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**3 if sys.platform == "darwin" else peak / 1024**2  # macOS reports bytes, Linux KiB


def _version(name: str) -> str:
    try:  # read the installed metadata: importing torch or TensorFlow just for a version costs hundreds of MB
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _accelerator() -> str:
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            return f"CUDA GPU: {torch.cuda.get_device_name(0)}"
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return f"GPU (TensorFlow): {len(gpus)} device(s)"
    return "none (CPU only)"


def environment_report(packages: tuple[str, ...] = _REPORTED_PACKAGES) -> str:
    """One printable block: Python, OS, CPU count, accelerator, preset and installed package versions."""
    if isinstance(packages, str) or not all(isinstance(name, str) for name in packages):
        raise TypeError(f"packages must be a tuple of package names such as ('numpy', 'torch'), got {packages!r}")
    lines = [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"CPU cores: {os.cpu_count()}   accelerator: {_accelerator()}",
        f"preset: {preset()} (set {PRESET_ENV}=small|full)",
        "packages: " + ", ".join(f"{name} {_version(name)}" for name in packages),
    ]
    return "\n".join(lines)


def faster_precision(step, repeats: int = 3, margin: float = 0.05, timer=None) -> tuple[bool, dict[str, float]]:
    """Time ``step(use_bfloat16)`` both ways (one untimed warm-up call each, then the best of ``repeats``); return
    whether bfloat16 is faster by more than ``margin`` and the seconds per call of each. ``$DLNLP_PRECISION`` overrides."""
    import time

    if not callable(step):
        raise ValueError(f"step must be a function of one bool (use bfloat16 or not), got {type(step).__name__}")
    if repeats < 1 or not 0 <= margin < 1:
        raise ValueError(f"repeats must be >= 1 and margin in [0, 1); got repeats={repeats}, margin={margin}")
    timer = time.perf_counter if timer is None else timer
    forced = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
    if forced not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"{PRECISION_ENV}={forced!r} is not a precision; use auto, float32 or bfloat16.")
    seconds = {}
    for name, use_bf16 in (("float32", False), ("bfloat16", True)):
        step(use_bf16)  # warm-up: first calls pick and compile kernels
        best = float("inf")
        for _ in range(repeats):
            start = timer()
            step(use_bf16)
            best = min(best, timer() - start)
        seconds[name] = best
    if forced != "auto":
        return forced == "bfloat16", seconds
    return seconds["bfloat16"] < (1 - margin) * seconds["float32"], seconds
