"""Set up and run the tutorial series on Linux, macOS and Windows with nothing but Python 3.11-3.13.

    python run.py tutorial     set up (first time) and open the notebooks in JupyterLab
    python run.py test         set up (first time), run the unit tests and every notebook (nbval)

Other commands: setup, run, unit, prefetch, bench, check, kernel, check-html, book, check-book, clean-venv
(``python run.py -h``).
Extra arguments go to the tool underneath, e.g. ``python run.py test -k data``. The virtual environment is
``.venv`` beside this file unless ``--venv PATH`` or ``$DLNLP_VENV`` names another; ``--no-venv`` uses the Python
that runs this script (conda, Binder). Only the standard library is used, so this runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV_ENV = "DLNLP_VENV"
STAMP_NAME = ".dlnlp-installed"
SUPPORTED = ((3, 11), (3, 13))  # oldest and newest minor version tested
KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (dl-nlp)"
# Set for every command run.py starts (unless already set) and written into the kernel spec, so that any
# front end using the series' kernel (JupyterLab, Notebook, VS Code) gets them. No hash seed is needed: gensim 4
# seeds its vectors from the model's seed, and the splits come from NumPy alone.
ENV_DEFAULTS = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2",
                "HF_HUB_OFFLINE": "1"}
# What setup depends on: a change to any of these files (or to the kernel settings) re-runs the installation.
SETUP_INPUTS = ("requirements.txt", "pyproject.toml")
PYTEST_NOTEBOOK_ARGS = ("--nbval-lax", "--nbval-cell-timeout=1800", "-p", "no:cacheprovider")
# Google Colab's versions (helpers/stack-colab.txt) as a second tested stack: `run.py test --stack colab`.
COLAB_STACK = Path("helpers") / "stack-colab.txt"
REPO_URL = "https://github.com/dlnlp-tutorial/deep-learning-nlp-python"  # what the notebooks' install cell installs
# The series' variables a Colab run keeps: a learner there sets none, but claims are checked across seeds and precisions.
CHECK_VARIABLES = ("DLNLP_SEED", "DLNLP_PRECISION")
COLAB_TESTS = ("tests/test_splits.py",)  # the unit tests whose claims must hold on Colab's versions too
BOOK_PRESET = "small"  # the book shows the notebooks as a 2-core laptop runs them


class RunError(RuntimeError):
    """A failure whose message says what to do; printed without a traceback."""


def is_windows() -> bool:
    """True on Windows, where virtual environments keep their programs in ``Scripts\\``."""
    return os.name == "nt"


def venv_python(venv: Path, windows: bool | None = None) -> Path:
    """The interpreter of virtual environment ``venv``: ``bin/python``, or ``Scripts\\python.exe`` on Windows."""
    windows = is_windows() if windows is None else windows
    return venv / "Scripts" / "python.exe" if windows else venv / "bin" / "python"


def show(cmd: Sequence[str]) -> str:
    """A command as one would type it in this system's shell (for the log line before it runs)."""
    return subprocess.list2cmdline(cmd) if is_windows() else shlex.join(cmd)


def notebooks(root: Path = ROOT) -> list[Path]:
    """The series' notebooks, in order, relative to ``root``."""
    return sorted(p.relative_to(root) for p in (root / "notebooks").glob("*.ipynb"))


def names_tests(extra: Sequence[str]) -> bool:
    """True when the extra pytest arguments name what to run (a file, folder or node id under tests/ or notebooks/)."""
    for arg in extra:
        path = arg.split("::")[0].replace("\\", "/")
        if not arg.startswith("-") and (path.endswith((".py", ".ipynb")) or path.split("/")[0] in ("tests", "notebooks")):
            return True
    return False


def executed_copy(nb: Path, root: Path = ROOT) -> Path | None:
    """The newest executed copy of notebook ``nb`` (``bench``'s or ``run``'s) newer than it and helpers/, else None."""
    inputs = [root / nb, *(root / "helpers").glob("*.py")]
    oldest_fresh = max(p.stat().st_mtime for p in inputs if p.exists())
    copies = [root / "build" / f"bench-{BOOK_PRESET}" / nb.name, root / "build" / nb.name]
    fresh = [p for p in copies if p.exists() and p.stat().st_mtime >= oldest_fresh]
    return max(fresh, key=lambda p: p.stat().st_mtime, default=None)


def command_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (the current environment) with ``ENV_DEFAULTS`` filled in where unset."""
    env = dict(os.environ if base is None else base)
    for name, value in ENV_DEFAULTS.items():
        env.setdefault(name, value)
    return env


def setup_hash(root: Path = ROOT) -> str:
    """SHA-256 over the setup inputs and the kernel settings: the stamp that says an installation is current."""
    digest = hashlib.sha256()
    for name in SETUP_INPUTS:
        path = root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"(missing)") + b"\0")
    digest.update(repr(sorted(ENV_DEFAULTS.items())).encode())
    return digest.hexdigest()


def check_python(version: Sequence[int] = sys.version_info[:2]) -> str | None:
    """Raise ``RunError`` for a Python older than 3.11; return a warning for one newer than tested, else None."""
    version = tuple(version[:2])
    (lo_major, lo_minor), (hi_major, hi_minor) = SUPPORTED
    if version < SUPPORTED[0]:
        raise RunError(f"This series needs Python {lo_major}.{lo_minor} to {hi_major}.{hi_minor}; this is "
                       f"Python {version[0]}.{version[1]} ({sys.executable}). Install Python {hi_major}.{hi_minor} "
                       f"(python.org, or your package manager) and run this script with it, e.g. "
                       f"`py -{hi_major}.{hi_minor} run.py ...` on Windows or `python{hi_major}.{hi_minor} run.py ...`.")
    if version > SUPPORTED[1]:
        return (f"warning: Python {version[0]}.{version[1]} is newer than the series was tested with "
                f"({lo_major}.{lo_minor} to {hi_major}.{hi_minor}); the pinned packages may have no wheels for it yet. "
                f"If installing fails, use Python {hi_major}.{hi_minor}.")
    return None


class Runner:
    """Runs the series' commands in one environment: a virtual environment (created on demand) or this Python."""

    def __init__(self, venv: Path | None, root: Path = ROOT, call: Callable[..., int] | None = None,
                 out: Callable[[str], None] = print) -> None:
        self.venv = venv
        self.root = root
        self._call = call or self._subprocess_call
        self.out = out

    @staticmethod
    def _subprocess_call(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
        return subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode

    @property
    def python(self) -> Path:
        """The interpreter every command runs with."""
        return venv_python(self.venv) if self.venv is not None else Path(sys.executable)

    @property
    def stamp(self) -> Path:
        """The file holding the setup hash of the last successful installation."""
        prefix = self.venv if self.venv is not None else Path(sys.prefix)
        return prefix / STAMP_NAME

    def call(self, *args: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
        """Run ``python args...`` from the repository root with the series' environment variables (and ``env``)."""
        cmd = [str(self.python), *map(str, args)]
        self.out("+ " + show(cmd))
        code = self._call(cmd, cwd=self.root, env={**command_env(), **(env or {})})
        if check and code != 0:
            raise RunError(f"`{show(cmd)}` failed (exit status {code}); see its messages above. Fix that, then "
                           "run the same command again (setup resumes where it stopped).")
        return code

    def is_current(self) -> bool:
        """True when the environment exists and was installed from the current requirements and settings."""
        try:
            return self.python.exists() and self.stamp.read_text(encoding="utf-8").strip() == setup_hash(self.root)
        except OSError:
            return False

    def create_venv(self, pip: bool = True) -> None:
        """Create the virtual environment with the Python running this script (and pip), unless it exists."""
        if self.venv is None or self.python.exists():
            return
        if self.venv.exists() and any(self.venv.iterdir()) and not (self.venv / "pyvenv.cfg").exists():
            raise RunError(f"{self.venv} exists and is not a virtual environment; nothing was changed. Move it away, "
                           f"or choose another folder with --venv or {VENV_ENV}.")
        cmd = [sys.executable, "-m", "venv", *([] if pip else ["--without-pip"]), str(self.venv)]
        self.out("+ " + show(cmd))
        if self._call(cmd, cwd=self.root, env=command_env()) != 0 or not self.python.exists():
            raise RunError(f"Could not create a virtual environment in {self.venv}. On Debian/Ubuntu install the "
                           "python3-venv package; elsewhere reinstall Python from python.org, then run this again.")

    def install_kernel(self) -> None:
        """Install the Jupyter kernel spec into the environment, carrying ``ENV_DEFAULTS``."""
        env_args = [arg for name, value in ENV_DEFAULTS.items() for arg in ("--env", name, value)]
        self.call("-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL_NAME,
                  "--display-name", KERNEL_DISPLAY_NAME, *env_args)

    def setup(self, force: bool = False) -> None:
        """Create the environment and install the pinned stack, helpers and the kernel, unless already current."""
        if not force and self.is_current():
            return
        digest = setup_hash(self.root)  # of the files as they were when the installation began
        self.create_venv()
        self.call("-m", "pip", "install", "--upgrade", "pip")
        self.call("-m", "pip", "install", "-r", "requirements.txt")
        self.call("-m", "pip", "install", "--no-deps", "-e", ".")
        self.install_kernel()
        tmp = self.stamp.with_name(self.stamp.name + ".tmp")
        try:
            tmp.write_text(digest + "\n", encoding="utf-8")
            os.replace(tmp, self.stamp)
        except OSError as err:  # e.g. --no-venv with a read-only Python: setup simply runs again next time
            self.out(f"note: could not record the setup in {self.stamp} ({err}); the next command re-checks it.")
        self.out(f"Environment ready: {self.python}")

    # The commands; each takes the extra arguments and returns an exit status.

    def cmd_setup(self, extra: list[str]) -> int:
        """Create or update the environment (``--force`` reinstalls even when current)."""
        self.setup(force="--force" in extra)
        return 0

    def cmd_tutorial(self, extra: list[str]) -> int:
        """Set up, then open the notebooks in JupyterLab."""
        self.setup()
        return self.call("-m", "jupyterlab", "notebooks", *extra, check=False)

    def cmd_test(self, extra: list[str]) -> int:
        """Set up, then run the unit tests and every notebook under nbval (or only the tests named)."""
        self.setup()
        targets = [] if names_tests(extra) else ["tests", *notebooks(self.root)]
        return self.call("-m", "pytest", *targets, *PYTEST_NOTEBOOK_ARGS, *extra, check=False)

    def cmd_unit(self, extra: list[str]) -> int:
        """Set up, then run the unit tests alone (or only the tests named)."""
        self.setup()
        return self.call("-m", "pytest", *([] if names_tests(extra) else ["tests"]), *extra, check=False)

    def cmd_run(self, extra: list[str]) -> int:
        """Set up, then execute every notebook in order into build/ (executed .ipynb and .html)."""
        self.setup()
        build = self.root / "build"
        build.mkdir(exist_ok=True)
        for nb in notebooks(self.root):
            self.out(f"== {nb.as_posix()}")
            self.call("-m", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=-1",
                      "--output-dir", "build", nb, *extra)
            self.call("-m", "nbconvert", "--to", "html", "--output-dir", "build", Path("build") / nb.name)
        return 0

    def cmd_prefetch(self, extra: list[str]) -> int:
        """Set up, then download, check, extract and cache IMDB."""
        self.setup()
        return self.call("-m", "helpers", "prefetch", *extra, check=False)

    def cmd_bench(self, extra: list[str]) -> int:
        """Set up, then benchmark every notebook (scripts/tools/bench.py)."""
        self.setup()
        return self.call(Path("scripts") / "tools" / "bench.py", *extra, check=False)

    def cmd_check(self, extra: list[str]) -> int:
        """The preflight (``python -m helpers check``) in the environment, without installing anything."""
        if not self.python.exists():
            self.out(f"[FAIL] environment: {self.python} does not exist -> run `python run.py setup` first")
            return 1
        if not self.is_current():
            self.out("[WARN] environment: requirements.txt or pyproject.toml changed since the last setup "
                     "-> run `python run.py setup`")
        return self.call("-m", "helpers", "check", *extra, check=False)

    def cmd_kernel(self, extra: list[str]) -> int:
        """(Re)install the Jupyter kernel spec with the series' environment variables."""
        self.install_kernel()
        return 0

    def cmd_check_html(self, extra: list[str]) -> int:
        """Set up, then check the HTML pages in build/ in Chromium (after ``run``)."""
        self.setup()
        self.call("-m", "pip", "install", "-q", "-r", "requirements-browser.txt")
        pages = sorted((self.root / "build").glob("*.html"))
        return self.call(Path("scripts") / "tools" / "check_html.py", *(p.relative_to(self.root) for p in pages), *extra,
                         check=False)

    def cmd_book(self, extra: list[str]) -> int:
        """Set up, then build the book of executed notebooks into build/book (``--execute``: run them all again)."""
        self.setup()
        self.call("-m", "pip", "install", "-q", "-r", "requirements-book.txt")
        force, extra = "--execute" in extra, [arg for arg in extra if arg != "--execute"]
        executed = []
        for nb in notebooks(self.root):
            copy = None if force else executed_copy(nb, self.root)
            if copy is None:  # each notebook runs at most once per command, and only when no fresh copy exists
                self.out(f"== executing {nb.as_posix()} ({BOOK_PRESET} preset)")
                self.call("-m", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=-1",
                          "--output-dir", "build", nb, env={"DLNLP_PRESET": BOOK_PRESET})
                copy = self.root / "build" / nb.name
            else:
                self.out(f"== {nb.as_posix()}: reusing {copy.relative_to(self.root).as_posix()}")
            executed.append(copy.relative_to(self.root))
        return self.call(Path("scripts") / "tools" / "build_book.py", *executed, *extra, check=False)

    def cmd_check_book(self, extra: list[str]) -> int:
        """Set up, then open every page of build/book in Chromium and check it (after ``book``)."""
        self.setup()
        self.call("-m", "pip", "install", "-q", "-r", "requirements-browser.txt")
        return self.call(Path("scripts") / "tools" / "check_book.py", *(extra or [Path("build") / "book"]), check=False)

    def cmd_clean_venv(self, extra: list[str]) -> int:
        """Delete the virtual environment (only if it is one)."""
        if self.venv is None:
            raise RunError("--no-venv uses this Python's own environment; run.py will not delete it.")
        if not self.venv.exists():
            return 0
        if not (self.venv / "pyvenv.cfg").exists():
            raise RunError(f"{self.venv} has no pyvenv.cfg, so it is not a virtual environment; nothing was deleted.")
        self.out(f"Deleting {self.venv}")
        shutil.rmtree(self.venv)
        return 0


class ColabRunner(Runner):
    """The ``colab`` stack: Colab's versions in their own environment, notebooks run the way Colab runs them."""

    def __init__(self, venv: Path, python: str | None = None, **kwargs) -> None:
        super().__init__(venv, **kwargs)
        self.base_python = python

    def stack_python(self) -> str:
        """The Python to build the environment with: ``--python``, else ``pythonX.Y`` as the Colab file names it."""
        text = (self.root / COLAB_STACK).read_text(encoding="utf-8")
        version = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# python:"))
        found = self.base_python or shutil.which(f"python{version}")
        if not found:
            raise RunError(f"Colab runs Python {version}, and no python{version} is on PATH. Install it, or name one "
                           f"with `python run.py --stack colab --python /path/to/python{version} test`.")
        return found

    def is_current(self) -> bool:
        """True when the environment was built from the current Colab file (helpers are reinstalled every run)."""
        digest = hashlib.sha256((self.root / COLAB_STACK).read_bytes()).hexdigest()
        try:
            return self.python.exists() and self.stamp.read_text(encoding="utf-8").strip() == digest
        except OSError:
            return False

    def setup(self, force: bool = False) -> None:
        """Build the environment: Colab's packages, the install cell's, nbval, and helpers as the install cell does."""
        if force or not self.is_current():
            if not self.python.exists():
                cmd = [self.stack_python(), "-m", "venv", str(self.venv)]
                self.out("+ " + show(cmd))
                if self._call(cmd, cwd=self.root, env=dict(os.environ)) != 0:
                    raise RunError(f"Could not create {self.venv} with {cmd[0]}.")
            nbval = next(line for line in (self.root / "requirements.txt").read_text().splitlines()
                         if line.startswith("nbval=="))
            self.call("-m", "pip", "install", "-r", COLAB_STACK, nbval)
            self.stamp.write_text(hashlib.sha256((self.root / COLAB_STACK).read_bytes()).hexdigest() + "\n")
        self.call("-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", ".")  # helpers as this clone has them

    def colab_env(self, folder: Path) -> dict[str, str]:
        """Colab's environment: none of the series' variables but ``CHECK_VARIABLES``, ``google.colab`` imported by
        the kernel, and the install cell's ``git+https`` address answered by this clone (what is committed, as on
        GitHub)."""
        env = {k: v for k, v in os.environ.items()
               if (k in CHECK_VARIABLES or not k.startswith("DLNLP_")) and k not in ENV_DEFAULTS}
        stub = folder / ".colab" / "google" / "colab"  # a namespace package beside google.protobuf, as on Colab
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text('"""Stand-in for Colab\'s module: its presence is what the notebooks test."""\n')
        startup = folder / ".ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-colab.py").write_text("import google.colab  # noqa: F401\n")
        env.update(PYTHONPATH=str(folder / ".colab"), IPYTHONDIR=str(folder / ".ipython"),
                   COLAB_RELEASE_TAG="simulated", GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.{self.root}.insteadOf",
                   GIT_CONFIG_VALUE_0=REPO_URL)
        return env

    def cmd_test(self, extra: list[str]) -> int:
        """Set up, run the split tests, then each notebook from a folder outside the clone, as on Colab."""
        self.setup()
        status = self.call("-m", "pytest", *COLAB_TESTS, "-p", "no:cacheprovider", check=False)
        folder = Path(tempfile.mkdtemp(prefix="dlnlp-colab-"))
        env = self.colab_env(folder)
        # A learner's already-downloaded copy: the archive (and a parsed cache, if one exists) in Colab's data/.
        (folder / "data").mkdir()
        sources = [Path(os.environ["DLNLP_DATA_DIR"])] if os.environ.get("DLNLP_DATA_DIR") else []
        for name in ("aclImdb_v1.tar.gz",):
            found = next((s / name for s in [*sources, self.root / "data"] if (s / name).is_file()), None)
            if found:
                (folder / "data" / name).symlink_to(found.resolve())
        times = {}
        named = [arg for arg in extra if arg.endswith(".ipynb")]  # e.g. notebooks/02_lstm_sentiment.ipynb: only those
        extra = [arg for arg in extra if arg not in named]
        for nb in notebooks(self.root):
            if named and not any(Path(arg).name == nb.name for arg in named):
                continue
            shutil.copy(self.root / nb, folder / nb.name)
            cmd = [str(self.python), "-m", "pytest", nb.name, *PYTEST_NOTEBOOK_ARGS, *extra]
            self.out(f"+ (in {folder}) " + show(cmd))
            start = time.perf_counter()
            code = self._call(cmd, cwd=folder, env=env)
            times[nb.name] = (time.perf_counter() - start, code)
            status = status or code
        self.out("Colab stack, per notebook: " + "; ".join(f"{n} {'passed' if c == 0 else 'FAILED'} in {t:.0f} s"
                                                             for n, (t, c) in times.items()))
        return status


COMMANDS = {name.removeprefix("cmd_").replace("_", "-"): name for name in vars(Runner) if name.startswith("cmd_")}


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split the command line after the command: run.py's own options and command, then the tool's arguments."""
    argv = list(argv)
    i = 0
    while i < len(argv):
        if argv[i] in COMMANDS:
            return argv[: i + 1], argv[i + 1 :]
        i += 2 if argv[i] in ("--venv", "--stack", "--python") else 1  # an option's value is never the command
    return argv, []


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options and command, and the extra arguments (everything after the command) for the tool underneath."""
    lines = [f"  {name:<11} {(getattr(Runner, attr).__doc__ or '').strip()}" for name, attr in COMMANDS.items()]
    parser = argparse.ArgumentParser(
        prog="run.py", allow_abbrev=False,
        description="Set up and run the tutorial series (stdlib only; Linux, macOS, Windows).",
        epilog="commands:\n" + "\n".join(lines) + "\n\nArguments after the command go to the tool underneath, "
               "e.g. `python run.py test -k data`.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--venv", type=Path, help=f"virtual environment folder (default: ${VENV_ENV}, else .venv)")
    where.add_argument("--no-venv", action="store_true", help="use the Python running this script (conda, Binder)")
    parser.add_argument("--stack", choices=("pins", "colab"), default="pins",
                        help="pins: requirements.txt (default); colab: Colab's versions in .venv-colab (test, setup)")
    parser.add_argument("--python", help="with --stack colab: the Python to build its environment with")
    parser.add_argument("command", choices=list(COMMANDS), metavar="command", help="one of: " + ", ".join(COMMANDS))
    own, extra = split_command(argv)
    return parser.parse_args(own), extra


def resolve_venv(option: Path | None, no_venv: bool, env: dict[str, str] | None = None,
                 root: Path = ROOT, default: str = ".venv") -> Path | None:
    """The virtual environment folder: ``--venv``, else ``$DLNLP_VENV`` (pins only), else ``root/default``."""
    if no_venv:
        return None
    env = os.environ if env is None else env
    chosen = option or (Path(env[VENV_ENV]) if env.get(VENV_ENV, "").strip() and default == ".venv" else None)
    if chosen is None:
        return root / default
    chosen = chosen.expanduser()
    return chosen if chosen.is_absolute() else (Path.cwd() / chosen).resolve()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse the command line, run the command, and turn known failures into one clear message."""
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if warning := check_python():
            print(warning, file=sys.stderr)
        if args.stack == "colab":
            if args.no_venv or args.command not in ("setup", "test"):
                raise RunError("--stack colab works with `setup` and `test`, in a virtual environment of its own.")
            runner: Runner = ColabRunner(resolve_venv(args.venv, False, root=ROOT, default=".venv-colab"),
                                         python=args.python)
        else:
            runner = Runner(resolve_venv(args.venv, args.no_venv))
        return getattr(runner, COMMANDS[args.command])(extra)
    except RunError as err:
        print(f"run.py: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
