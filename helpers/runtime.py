"""Reproducibility and run settings: seeds, the size preset, and an environment report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys

import numpy as np

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


def keras_precision(verbose: bool = True) -> str:
    """Set Keras's global dtype policy as ``bfloat16_choice`` decides and return it (set it again after ``clear_session``)."""
    import keras

    use, why = bfloat16_choice("tensorflow")
    policy = "mixed_bfloat16" if use else "float32"
    keras.mixed_precision.set_global_policy(policy)
    if verbose:
        print(f"Keras dtype policy: {policy} ({why}).")
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
    lines = [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"CPU cores: {os.cpu_count()}   accelerator: {_accelerator()}",
        f"preset: {preset()} (set {PRESET_ENV}=small|full)",
        "packages: " + ", ".join(f"{name} {_version(name)}" for name in packages),
    ]
    return "\n".join(lines)
