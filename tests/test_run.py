"""run.py, the cross-platform entry point: stdlib only, the right commands, setup only when inputs change."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import helpers.check as check

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run", ROOT / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


class Recorder:
    """Stands in for subprocess: records each command and plays the part of ``python -m venv``."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        self.fail_on = fail_on

    def __call__(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
        self.calls.append(cmd)
        self.envs.append(env)
        if cmd[1:3] == ["-m", "venv"]:
            python = run.venv_python(Path(cmd[3]))
            python.parent.mkdir(parents=True)
            python.write_text("")
            (Path(cmd[3]) / "pyvenv.cfg").write_text("home = x\n")
        return 1 if self.fail_on and self.fail_on in cmd else 0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository-shaped folder: requirements, pyproject and two notebooks (out of order on disk)."""
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "requirements.txt").write_text("numpy==2.0\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for name in ("02_b.ipynb", "01_a.ipynb"):
        (root / "notebooks" / name).write_text("{}")
    return root


def _runner(repo: Path, rec: Recorder) -> run.Runner:
    return run.Runner(repo / ".venv", root=repo, call=rec, out=lambda _: None)


def test_run_py_imports_only_the_standard_library() -> None:
    tree = ast.parse((ROOT / "run.py").read_text(encoding="utf-8"))
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names - set(sys.stdlib_module_names)


def test_run_py_has_no_posix_only_constructs() -> None:
    text = (ROOT / "run.py").read_text(encoding="utf-8")
    for construct in ("shell=True", "os.fork", "fcntl", "os.getuid", "/bin/", "os.system(", "os.chmod"):
        assert construct not in text, construct


@pytest.mark.parametrize(("windows", "expected"), [(True, ("Scripts", "python.exe")), (False, ("bin", "python"))])
def test_venv_python_follows_the_os(windows: bool, expected: tuple[str, str]) -> None:
    assert run.venv_python(Path("v"), windows=windows).parts[-2:] == expected


def test_command_env_fills_defaults_and_keeps_what_the_user_set() -> None:
    env = run.command_env({"KERAS_BACKEND": "jax", "PATH": "p"})
    assert env["KERAS_BACKEND"] == "jax" and env["PATH"] == "p" and "PYTHONHASHSEED" not in env
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "2" and env["HF_HUB_OFFLINE"] == "1"


def test_settings_agree_with_the_preflight() -> None:
    assert run.ENV_DEFAULTS == check.KERNEL_ENV
    assert run.KERNEL_NAME == check.KERNEL_NAME
    assert run.SUPPORTED == check.SUPPORTED_PYTHONS


def test_setup_creates_the_venv_installs_everything_and_then_does_nothing(repo: Path) -> None:
    rec = Recorder()
    runner = _runner(repo, rec)
    runner.setup()
    steps = [c[1:] for c in rec.calls]
    assert rec.calls[0][:3] == [sys.executable, "-m", "venv"]
    assert ["-m", "pip", "install", "-r", "requirements.txt"] in steps
    assert ["-m", "pip", "install", "--no-deps", "-e", "."] in steps
    kernel = next(s for s in steps if s[:3] == ["-m", "ipykernel", "install"])
    assert kernel[kernel.index("--name") + 1] == "python3" and "--sys-prefix" in kernel
    pairs = {kernel[i + 1]: kernel[i + 2] for i, arg in enumerate(kernel) if arg == "--env"}
    assert pairs == run.ENV_DEFAULTS
    assert all(c[0] == str(run.venv_python(repo / ".venv")) for c in rec.calls[1:])
    assert runner.is_current()
    rec.calls.clear()
    runner.setup()
    assert rec.calls == [], "an unchanged setup must not reinstall"


@pytest.mark.parametrize("changed", ["requirements.txt", "pyproject.toml"])
def test_a_changed_input_reinstalls_without_recreating_the_venv(repo: Path, changed: str) -> None:
    rec = Recorder()
    runner = _runner(repo, rec)
    runner.setup()
    (repo / changed).write_text((repo / changed).read_text() + "\n# changed\n")
    rec.calls.clear()
    assert not runner.is_current()
    runner.setup()
    assert rec.calls and all(c[1:3] != ["-m", "venv"] for c in rec.calls)
    assert runner.is_current()


def test_a_failed_step_stops_with_a_clear_error_and_no_stamp(repo: Path) -> None:
    rec = Recorder(fail_on="requirements.txt")
    runner = _runner(repo, rec)
    with pytest.raises(run.RunError, match=r"requirements\.txt.*failed \(exit status 1\).*run the same command again"):
        runner.setup()
    assert not runner.stamp.exists() and not runner.is_current()


def test_windows_layout_is_used_on_windows(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "is_windows", lambda: True)
    rec = Recorder()
    runner = _runner(repo, rec)
    runner.setup()
    assert runner.python == repo / ".venv" / "Scripts" / "python.exe" and runner.python.exists()
    assert rec.calls[1][0].endswith("python.exe")
    assert run.show(["a b", "c"]) == '"a b" c'


def test_test_runs_what_make_test_ran_with_extra_arguments(repo: Path) -> None:
    rec = Recorder()
    runner = _runner(repo, rec)
    runner.setup()
    rec.calls.clear()
    assert runner.cmd_test(["-k", "data"]) == 0
    python = str(runner.python)
    assert rec.calls == [[python, "-m", "pytest", "tests", str(Path("notebooks/01_a.ipynb")),
                          str(Path("notebooks/02_b.ipynb")), "--nbval-lax", "--nbval-cell-timeout=1800",
                          "-p", "no:cacheprovider", "-k", "data"]]
    assert all(name in rec.envs[0] for name in run.ENV_DEFAULTS)


def test_named_tests_replace_the_default_targets(repo: Path) -> None:
    rec = Recorder()
    runner = _runner(repo, rec)
    runner.setup()
    rec.calls.clear()
    runner.cmd_test(["notebooks/01_a.ipynb"])
    runner.cmd_unit(["-q", "tests/test_run.py::test_python_versions"])
    runner.cmd_unit(["-k", "data"])  # `data` is an option's value, and not a test path
    assert [c[3:] for c in rec.calls] == [[*run.PYTEST_NOTEBOOK_ARGS, "notebooks/01_a.ipynb"],
                                          ["-q", "tests/test_run.py::test_python_versions"],
                                          ["tests", "-k", "data"]]
    assert run.names_tests(["tests\\test_data.py"]) and not run.names_tests(["-x", "--maxfail=2"])


def test_commands_return_the_tools_exit_status(repo: Path) -> None:
    rec = Recorder(fail_on="tests")
    runner = _runner(repo, rec)
    runner.setup()
    assert runner.cmd_unit([]) == 1


@pytest.mark.parametrize(("command", "expected"), [
    ("tutorial", ["-m", "jupyterlab", "notebooks"]),
    ("unit", ["-m", "pytest", "tests"]),
    ("prefetch", ["-m", "helpers", "prefetch"]),
    ("bench", [str(Path("scripts/tools/bench.py"))]),
    ("check", ["-m", "helpers", "check"]),
])
def test_each_command_runs_its_tool(repo: Path, command: str, expected: list[str]) -> None:
    rec = Recorder()
    runner = _runner(repo, rec)
    runner.setup()
    rec.calls.clear()
    getattr(runner, run.COMMANDS[command])([])
    assert rec.calls[-1][1:] == expected


def test_no_venv_uses_this_python(tmp_path: Path) -> None:
    rec = Recorder()
    runner = run.Runner(None, root=tmp_path, call=rec, out=lambda _: None)
    assert runner.python == Path(sys.executable) and runner.stamp.parent == Path(sys.prefix)
    runner.cmd_kernel([])
    assert rec.calls[0][:4] == [sys.executable, "-m", "ipykernel", "install"]
    with pytest.raises(run.RunError, match="will not delete"):
        runner.cmd_clean_venv([])


def test_pyproject_says_which_pythons() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11"
    lo, hi = run.SUPPORTED
    assert [f"Programming Language :: Python :: 3.{m}" for m in range(lo[1], hi[1] + 1)] == [
        c for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")]


def test_environment_yml_pins_the_oldest_supported_python_and_says_which_are_supported() -> None:
    yaml = pytest.importorskip("yaml")
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    env = yaml.safe_load(text)
    (lo_major, lo_minor), (hi_major, hi_minor) = run.SUPPORTED
    assert f"python={lo_major}.{lo_minor}" in env["dependencies"]  # Binder: the Python CI runs the whole suite on
    assert f"{lo_major}.{lo_minor} to {hi_major}.{hi_minor}" in text  # the comment names the supported range


def test_run_executes_each_notebook_then_renders_it(repo: Path) -> None:
    rec = Recorder()
    runner = _runner(repo, rec)
    runner.setup()
    rec.calls.clear()
    runner.cmd_run([])
    executed = [c[-1] for c in rec.calls if "--execute" in c]
    assert executed == [str(Path("notebooks/01_a.ipynb")), str(Path("notebooks/02_b.ipynb"))]
    assert [c[-1] for c in rec.calls if "html" in c] == [str(Path("build/01_a.ipynb")), str(Path("build/02_b.ipynb"))]


def test_check_without_an_environment_says_to_set_up(repo: Path) -> None:
    lines: list[str] = []
    runner = run.Runner(repo / ".venv", root=repo, call=Recorder(), out=lines.append)
    assert runner.cmd_check([]) == 1
    assert lines[0].startswith("[FAIL] environment") and "python run.py setup" in lines[0]


def test_a_real_venv_has_its_python_where_run_py_looks(tmp_path: Path) -> None:
    runner = run.Runner(tmp_path / "venv", root=tmp_path, out=lambda _: None)
    runner.create_venv(pip=False)  # the real `python -m venv`, without pip to keep it quick
    version = subprocess.run([str(runner.python), "-c", "import sys; print(sys.prefix)"], capture_output=True,
                             text=True, timeout=60, check=True).stdout.strip()
    assert Path(version).resolve() == (tmp_path / "venv").resolve()


def test_an_existing_folder_that_is_not_a_venv_is_left_alone(repo: Path) -> None:
    (repo / ".venv").mkdir()
    (repo / ".venv" / "notes.txt").write_text("mine")
    runner = _runner(repo, Recorder())
    with pytest.raises(run.RunError, match="not a virtual environment; nothing was changed"):
        runner.setup()
    with pytest.raises(run.RunError, match="nothing was deleted"):
        runner.cmd_clean_venv([])
    assert (repo / ".venv" / "notes.txt").read_text() == "mine"


def test_clean_venv_deletes_a_venv(repo: Path) -> None:
    runner = _runner(repo, Recorder())
    runner.setup()
    runner.cmd_clean_venv([])
    assert not (repo / ".venv").exists()


def test_arguments_after_the_command_go_to_the_tool() -> None:
    args, extra = run.parse_args(["--venv", "test", "unit", "-k", "data", "--venv", "x", "--no"])
    assert args.command == "unit" and args.venv == Path("test") and extra == ["-k", "data", "--venv", "x", "--no"]
    args, extra = run.parse_args(["--no-venv", "check"])
    assert args.no_venv and args.command == "check" and extra == []


def test_venv_location_option_then_env_then_default(tmp_path: Path) -> None:
    assert run.resolve_venv(None, False, env={}, root=tmp_path) == tmp_path / ".venv"
    assert run.resolve_venv(None, False, env={run.VENV_ENV: str(tmp_path / "e")}, root=tmp_path) == tmp_path / "e"
    assert run.resolve_venv(tmp_path / "o", False, env={run.VENV_ENV: "e"}, root=tmp_path) == tmp_path / "o"
    assert run.resolve_venv(tmp_path / "o", True, env={}, root=tmp_path) is None


def test_python_versions() -> None:
    with pytest.raises(run.RunError, match=r"needs Python 3\.11 to 3\.13.*py -3\.13"):
        run.check_python((3, 10))
    assert run.check_python((3, 11)) is None and run.check_python((3, 13)) is None
    assert "newer than the series was tested with" in run.check_python((3, 14))


def test_setup_hash_depends_on_the_inputs(repo: Path) -> None:
    before = run.setup_hash(repo)
    assert run.setup_hash(repo) == before
    (repo / "requirements.txt").write_text("numpy==2.1\n")
    assert run.setup_hash(repo) != before


def test_the_script_runs_and_reports_a_missing_environment(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--venv", str(tmp_path / "none"), "check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "[FAIL] environment" in result.stdout
    help_text = subprocess.run([sys.executable, str(ROOT / "run.py"), "-h"], capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and all(name in help_text.stdout for name in run.COMMANDS)


def test_makefile_is_a_thin_wrapper_over_run_py() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^TARGETS\s*:=\s*(.+)$", makefile, re.M).group(1).split()
    assert set(phony) == set(run.COMMANDS)
    assert "run.py $@" in makefile


def test_installed_kernel_spec_carries_the_variables() -> None:
    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    specs = kernelspec.KernelSpecManager().find_kernel_specs()
    resource_dir = specs.get(run.KERNEL_NAME)
    if resource_dir is None or not Path(resource_dir).resolve().is_relative_to(Path(sys.prefix).resolve()):
        pytest.skip(f"no {run.KERNEL_NAME!r} kernel spec installed in this environment ({sys.prefix}); "
                    "`python run.py setup` (or `python run.py kernel`) installs it")
    spec = json.loads((Path(resource_dir) / "kernel.json").read_text(encoding="utf-8"))
    env = spec.get("env") or {}
    wrong = {name: env.get(name) for name, value in run.ENV_DEFAULTS.items() if env.get(name) != value}
    assert not wrong, f"{resource_dir}/kernel.json has {wrong}, wanted {run.ENV_DEFAULTS}: run `python run.py kernel`"
    assert spec["display_name"] == run.KERNEL_DISPLAY_NAME


def test_colab_env_drops_the_series_variables_but_seed_and_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLNLP_PRESET", "full")
    monkeypatch.setenv("DLNLP_WORK_DIR", "/elsewhere")
    monkeypatch.setenv("DLNLP_SEED", "7")
    monkeypatch.setenv("DLNLP_PRECISION", "bfloat16")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    runner = run.ColabRunner(tmp_path / ".venv-colab", root=tmp_path, call=Recorder(), out=lambda _: None)
    env = runner.colab_env(tmp_path / "nb")
    assert "DLNLP_PRESET" not in env and "DLNLP_WORK_DIR" not in env and "KERAS_BACKEND" not in env
    assert env["DLNLP_SEED"] == "7" and env["DLNLP_PRECISION"] == "bfloat16" and env["COLAB_RELEASE_TAG"]
    assert (tmp_path / "nb" / ".colab" / "google" / "colab" / "__init__.py").is_file()
    startup = tmp_path / "nb" / ".ipython" / "profile_default" / "startup" / "00-colab.py"
    assert "import google.colab" in startup.read_text()
