"""Reproducibility and run settings: seeds, the size preset, and an environment report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys

import numpy as np

PRESET_ENV = "DLNLP_PRESET"
PRESETS = ("small", "full")
_REPORTED_PACKAGES = ("numpy", "tensorflow", "keras", "torch", "transformers", "gensim", "scikit-learn", "matplotlib")


def preset() -> str:
    """The size preset from ``$DLNLP_PRESET``: ``small`` (default, a 2-core CPU) or ``full`` (a GPU)."""
    value = os.environ.get(PRESET_ENV, "small").strip().lower() or "small"
    if value not in PRESETS:
        raise ValueError(f"{PRESET_ENV}={value!r} is not a preset; use one of {', '.join(PRESETS)}.")
    return value


def seed_everything(seed: int = 42) -> int:
    """Seed Python, NumPy, and TensorFlow/Keras and PyTorch when they are imported; return the seed."""
    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)  # seeds Python, NumPy and the backend
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
    if os.environ.get("PYTHONHASHSEED") is None:
        print("Note: PYTHONHASHSEED is not set, so gensim results vary between kernels. Start Jupyter "
              "with PYTHONHASHSEED=0 (the Makefile does) for reproducible word vectors.")
    return seed


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
        f"preset: {preset()} (set {PRESET_ENV}=small|full)   PYTHONHASHSEED={os.environ.get('PYTHONHASHSEED')}",
        "packages: " + ", ".join(f"{name} {_version(name)}" for name in packages),
    ]
    return "\n".join(lines)
