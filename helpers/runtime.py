"""Reproducibility and run settings: seeds, the size preset, thread pools sized to the CPUs, and an environment report.

NumPy (and so ``helpers.validate``) is imported only where needed: ``import helpers`` sizes the thread pools
(``limit_threads``) before NumPy's BLAS library loads and reads ``OPENBLAS_NUM_THREADS``.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path

PRESET_ENV = "DLNLP_PRESET"
SEED_ENV = "DLNLP_SEED"  # overrides a notebook's seed, to check its claims across seeds
PRECISION_ENV = "DLNLP_PRECISION"  # auto (default), float32 or bfloat16
THREADS_ENV = "DLNLP_THREADS"  # overrides the CPU count found here (a whole number >= 1)
# Read by OpenMP (PyTorch), MKL, OpenBLAS (NumPy) and TensorFlow when each starts its thread pool.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                   "TF_NUM_INTEROP_THREADS")
# The number limit_threads wrote into THREAD_ENV_VARS: a child process inherits them, and may sit in another cgroup,
# so a value equal to this one is helpers' own (recomputed there), any other value is the learner's (kept).
THREADS_SET_ENV = "DLNLP_THREADS_SET"
PRESETS = ("small", "full")
_REPORTED_PACKAGES = ("numpy", "tensorflow", "keras", "torch", "transformers", "gensim", "scikit-learn", "matplotlib")


def preset() -> str:
    """The size preset from ``$DLNLP_PRESET``: ``small`` (default, a 2-core CPU) or ``full`` (a GPU)."""
    value = os.environ.get(PRESET_ENV, "small").strip().lower() or "small"
    if value not in PRESETS:
        raise ValueError(f"{PRESET_ENV}={value!r} is not a preset; use one of {', '.join(PRESETS)}.")
    return value


def seed_everything(seed: int = 42) -> int:
    """Seed Python, NumPy, Keras and PyTorch (when imported) with ``seed``, or ``$DLNLP_SEED`` if set; return it.

    It first calls ``limit_threads`` again, so PyTorch and TensorFlow imported since ``import helpers`` get their
    thread counts set (before Keras seeding, which may start TensorFlow's runtime).
    """
    import numpy as np

    from . import validate as check

    limit_threads()
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
    """One printable block: Python, OS, usable CPUs (of the cores), accelerator, preset and installed package versions."""
    if isinstance(packages, str) or not all(isinstance(name, str) for name in packages):
        raise TypeError(f"packages must be a tuple of package names such as ('numpy', 'torch'), got {packages!r}")
    lines = [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"CPU cores: {cpu_budget().describe(cores_word=False)}   accelerator: {_accelerator()}",
        f"preset: {preset()} (set {PRESET_ENV}=small|full)",
        "packages: " + ", ".join(f"{name} {_version(name)}" for name in packages),
    ]
    return "\n".join(lines)


def release_memory() -> int:
    """Collect garbage and hand freed C-heap memory back to the system (glibc's malloc_trim; elsewhere only the collection)."""
    import ctypes
    import gc

    gc.collect()
    if not sys.platform.startswith("linux"):
        return 0
    try:
        return int(ctypes.CDLL("libc.so.6").malloc_trim(0))  # 1 if memory was returned
    except (OSError, AttributeError):  # another C library (musl) or none
        return 0


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
    release_memory()  # the timed steps' activations are freed, but the C allocator keeps them unless asked
    if forced != "auto":
        return forced == "bfloat16", seconds
    return seconds["bfloat16"] < (1 - margin) * seconds["float32"], seconds


@dataclass(frozen=True)
class CpuBudget:
    """The CPUs this process may use: the machine's cores, its affinity, its cgroup quota, ``$DLNLP_THREADS`` and the result."""

    cores: int
    affinity: int
    quota: float | None  # in CPUs (1.5 = 150 ms of CPU time per 100 ms); None: no cgroup limit
    override: int | None  # $DLNLP_THREADS, when set
    usable: int

    def describe(self, cores_word: bool = True) -> str:
        """One line such as ``1 usable of 64 cores (affinity 64, cgroup quota 1)``."""
        quota = "none" if self.quota is None else f"{self.quota:g}"
        why = f"affinity {self.affinity}, cgroup quota {quota}"
        if self.override is not None:
            why = f"{THREADS_ENV}={self.override}; {why}"
        return f"{self.usable} usable of {self.cores}{' cores' if cores_word else ''} ({why})"


def _read(path: Path) -> str | None:
    """A small file's stripped text, or None where it cannot be read."""
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):  # missing, unreadable (permissions, a sandbox) or garbled: no information
        return None


def _unescape(field: str) -> str:
    """A path from /proc/self/mountinfo, whose spaces, tabs, newlines and backslashes are octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _cgroup_mounts(root: Path) -> list[tuple[str, str, str]]:
    """(cgroup path mounted, mount point, ``"v2"`` or ``"v1"``) for cgroup v2 and v1 ``cpu`` mounts, from mountinfo.

    Without a readable mountinfo the usual layouts are assumed: v2 at /sys/fs/cgroup (or /sys/fs/cgroup/unified),
    v1's cpu controller at /sys/fs/cgroup/cpu or /sys/fs/cgroup/cpu,cpuacct.
    """
    mountinfo = _read(root / "proc" / "self" / "mountinfo")
    if mountinfo is None:
        return [("/", "/sys/fs/cgroup", "v2"), ("/", "/sys/fs/cgroup/unified", "v2"), ("/", "/sys/fs/cgroup/cpu", "v1"),
                ("/", "/sys/fs/cgroup/cpu,cpuacct", "v1"), ("/", "/sys/fs/cgroup/cpuacct,cpu", "v1")]
    mounts = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2":
            mounts.append((_unescape(fields[3]), _unescape(fields[4]), "v2"))
        elif tail[0] == "cgroup" and "cpu" in tail[2].split(","):
            mounts.append((_unescape(fields[3]), _unescape(fields[4]), "v1"))
    return mounts


def _own_cgroups(root: Path) -> dict[str, str]:
    """This process's cgroup path per hierarchy, from /proc/self/cgroup: ``"v2"`` and (cgroup v1) ``"v1"`` for cpu."""
    paths = {}
    for line in (_read(root / "proc" / "self" / "cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            paths["v2"] = parts[2]
        elif "cpu" in parts[1].split(","):
            paths["v1"] = parts[2]
    return paths


def _quota_in(folder: Path, version: str) -> float | None:
    """The CPU limit one cgroup folder sets, in CPUs: v2's ``cpu.max``, v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``."""
    try:
        if version == "v2":
            fields = (_read(folder / "cpu.max") or "max").split()
            quota, period = fields[0], (fields[1] if len(fields) > 1 else "100000")
        else:
            quota, period = _read(folder / "cpu.cfs_quota_us") or "-1", _read(folder / "cpu.cfs_period_us") or "100000"
        if quota == "max" or int(quota) <= 0 or int(period) <= 0:  # "max" (v2) and -1 (v1) mean no limit
            return None
        return int(quota) / int(period)
    except (ValueError, IndexError):  # garbled: no information
        return None


def cgroup_cpu_quota(root: str | os.PathLike[str] = "/") -> float | None:
    """The smallest CPU limit (in CPUs) on this process's cgroup and its parents, v1 or v2; None where there is none.

    ``root`` is where /proc and /sys are found (tests pass a fake tree). Unreadable files count as no limit: this
    never raises.
    """
    root = Path(root)
    own = _own_cgroups(root)
    limits = []
    for mounted, mount_point, version in _cgroup_mounts(root):
        if version not in own:
            continue
        path = own[version]
        top = root / mount_point.lstrip("/")
        if path == mounted or path.startswith(mounted.rstrip("/") + "/"):
            parts = [p for p in path[len(mounted.rstrip("/")):].split("/") if p]
        else:  # outside what is mounted (another cgroup namespace): the mount's own folder is all there is to read
            parts = []
        if ".." in parts:
            parts = []
        for depth in range(len(parts), -1, -1):  # the process's own cgroup first, then each parent up to the mount
            if (quota := _quota_in(top.joinpath(*parts[:depth]), version)) is not None:
                limits.append(quota)
    return min(limits) if limits else None


def _affinity() -> int:
    """The CPUs the OS lets this process run on (its affinity), or all of them where the OS cannot say."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13: the affinity where the OS has one
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _threads_override() -> int | None:
    """``$DLNLP_THREADS`` as a number, None when unset or blank; ``ValueError`` unless a whole number >= 1."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{THREADS_ENV}={os.environ[THREADS_ENV]!r} is not a whole number of threads >= 1; unset it "
                         f"to use the CPUs this process may use, or set e.g. {THREADS_ENV}=2.")
    return value


def cpu_budget(root: str | os.PathLike[str] = "/", affinity: int | None = None) -> CpuBudget:
    """The CPUs this process may use, with the reasons: see ``usable_cpus``; ``ValueError`` for a bad ``$DLNLP_THREADS``."""
    override = _threads_override()
    affinity = _affinity() if affinity is None else affinity
    quota = cgroup_cpu_quota(root)
    usable = max(1, affinity if quota is None else min(affinity, math.ceil(quota)))
    return CpuBudget(max(os.cpu_count() or 1, affinity), affinity, quota, override, usable if override is None else override)


def usable_cpus(root: str | os.PathLike[str] = "/", affinity: int | None = None) -> int:
    """The CPUs this process may use: min(its affinity, the cgroup quota rounded up), at least 1; ``$DLNLP_THREADS`` wins."""
    return cpu_budget(root, affinity).usable


_threads: int | None = None  # what limit_threads chose in this process
_threads_applied: set[str] = set()  # the frameworks it has set


def _env_threads(name: str, default: int) -> int:
    """The thread count in the environment variable ``name``, or ``default`` where it is not a number."""
    try:
        return max(1, int(os.environ.get(name, "")))
    except ValueError:
        return default


def limit_threads() -> int:
    """Size the thread pools of PyTorch, TensorFlow and the BLAS libraries to ``usable_cpus()``, once; return that number.

    ``import helpers`` calls it first, before the notebooks import NumPy, torch or TensorFlow, so it sets the
    environment variables they read as their pools start (OpenMP and MKL when torch loads, OpenBLAS when NumPy loads,
    ``TF_NUM_*`` when TensorFlow's runtime starts); a variable the learner set is kept. ``seed_everything`` calls it
    again after the notebook's imports: then ``torch.set_num_threads`` (works any time) and TensorFlow's threading
    setters (only before its runtime starts; later the variables have done it) cover frameworks imported before helpers.
    Further calls only set frameworks imported since.
    """
    global _threads
    if _threads is None:
        n = usable_cpus()
        ours = os.environ.get(THREADS_SET_ENV)
        for name in THREAD_ENV_VARS:
            if os.environ.get(name, "").strip() in ("", ours):
                os.environ[name] = str(n)
        os.environ[THREADS_SET_ENV] = str(n)
        _threads = n
    n = _threads
    if "torch" in sys.modules and "torch" not in _threads_applied:
        import torch

        torch.set_num_threads(_env_threads("OMP_NUM_THREADS", n))
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # the inter-op pool has started (or was set): it keeps its size
            pass
        _threads_applied.add("torch")
    if "tensorflow" in sys.modules and "tensorflow" not in _threads_applied:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(_env_threads("TF_NUM_INTRAOP_THREADS", n))
            tf.config.threading.set_inter_op_parallelism_threads(_env_threads("TF_NUM_INTEROP_THREADS", n))
        except RuntimeError:  # TensorFlow has started: it read TF_NUM_*_THREADS then, if helpers came first
            pass
        _threads_applied.add("tensorflow")
    return n


def _limit_threads_on_import() -> None:
    """``limit_threads`` for ``import helpers``, which must not fail: a bad ``$DLNLP_THREADS`` is reported later."""
    try:
        limit_threads()
    except ValueError:  # a bad $DLNLP_THREADS: seed_everything and `python -m helpers check` say so
        pass


_limit_threads_on_import()  # runs on `import helpers`, whose first import is this module
