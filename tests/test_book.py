"""The book: run.py's book and check-book commands, the build script's logic, its config and the Pages workflow."""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _load("run", ROOT / "run.py")
build_book = _load("build_book", ROOT / "scripts" / "tools" / "build_book.py")


class Recorder:
    """Stands in for subprocess: records each command and its environment, and plays ``python -m venv``."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []

    def __call__(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
        self.calls.append(cmd)
        self.envs.append(env)
        if cmd[1:3] == ["-m", "venv"]:
            python = run.venv_python(Path(cmd[3]))
            python.parent.mkdir(parents=True)
            python.write_text("")
            (Path(cmd[3]) / "pyvenv.cfg").write_text("home = x\n")
        return 0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "helpers").mkdir()
    (root / "helpers" / "plots.py").write_text("")
    (root / "requirements.txt").write_text("numpy==2.0\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (root / "notebooks" / name).write_text("{}")
    return root


def _age(path: Path, seconds: float) -> None:
    """Set a file's modification time ``seconds`` into the past."""
    t = path.stat().st_mtime - seconds
    os.utime(path, (t, t))


def _ready_runner(repo: Path) -> tuple[run.Runner, Recorder]:
    rec = Recorder()
    runner = run.Runner(repo / ".venv", root=repo, call=rec, out=lambda _: None)
    runner.setup()
    rec.calls.clear()
    rec.envs.clear()
    return runner, rec


def test_executed_copy_is_reused_only_when_newer_than_the_notebook_and_helpers(repo: Path) -> None:
    nb = Path("notebooks/01_a.ipynb")
    assert run.executed_copy(nb, repo) is None
    (repo / "build" / "bench-small").mkdir(parents=True)
    bench, ran = repo / "build" / "bench-small" / "01_a.ipynb", repo / "build" / "01_a.ipynb"
    bench.write_text("{}")
    ran.write_text("{}")
    _age(repo / nb, 100)
    _age(repo / "helpers" / "plots.py", 100)
    _age(bench, 10)
    assert run.executed_copy(nb, repo) == ran  # the newest fresh copy
    _age(ran, 50)
    assert run.executed_copy(nb, repo) == bench
    (repo / "helpers" / "plots.py").write_text("# changed\n")  # a helpers change makes every copy stale
    assert run.executed_copy(nb, repo) is None


def test_book_executes_only_what_has_no_fresh_copy_once_on_the_small_preset(repo: Path) -> None:
    runner, rec = _ready_runner(repo)
    (repo / "build").mkdir()
    (repo / "build" / "02_b.ipynb").write_text("{}")
    _age(repo / "notebooks" / "02_b.ipynb", 100)
    _age(repo / "helpers" / "plots.py", 100)
    assert runner.cmd_book(["-q"]) == 0
    assert rec.calls[0][-4:] == ["install", "-q", "-r", "requirements-book.txt"]
    executions = [(c, e) for c, e in zip(rec.calls, rec.envs, strict=True) if "--execute" in c]
    assert [c[-1] for c, _ in executions] == [str(Path("notebooks/01_a.ipynb"))]
    assert all(e["DLNLP_PRESET"] == "small" and e["KERAS_BACKEND"] == "tensorflow" for _, e in executions)
    build = rec.calls[-1]
    assert build[1] == str(Path("scripts/tools/build_book.py"))
    assert build[2:] == [str(Path("build/01_a.ipynb")), str(Path("build/02_b.ipynb")), "-q"]


def test_book_execute_option_runs_every_notebook_again(repo: Path) -> None:
    runner, rec = _ready_runner(repo)
    (repo / "build").mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (repo / "build" / name).write_text("{}")
    runner.cmd_book(["--execute"])
    assert len([c for c in rec.calls if "--execute" in c]) == 2
    assert "--execute" not in rec.calls[-1]  # run.py's option, not the build script's


def test_check_book_installs_the_browser_driver_and_checks_build_book(repo: Path) -> None:
    runner, rec = _ready_runner(repo)
    runner.cmd_check_book([])
    assert rec.calls[0][-2:] == ["-r", "requirements-browser.txt"]
    assert rec.calls[1][1:] == [str(Path("scripts/tools/check_book.py")), str(Path("build/book"))]
    assert "book" in run.COMMANDS and "check-book" in run.COMMANDS


def _png(label: str | None, alt: str, payload: bytes) -> dict:
    meta = {"alt": alt, **({"label": label} if label else {})}
    return {"output_type": "display_data", "data": {"image/png": base64.b64encode(payload).decode(), "text/plain": "x"},
            "metadata": {"image/png": meta}}


def _notebook(*outputs: dict) -> dict:
    return {"cells": [{"cell_type": "markdown", "source": "# T"}, {"cell_type": "code", "outputs": list(outputs)}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_key_figure_is_the_last_of_the_most_wanted_label() -> None:
    first = _notebook(_png("comparison", "03 comparison", b"A"), _png(None, "curve", b"B"))
    second = _notebook(_png("comparison", "04 comparison", b"C"))
    assert build_book.key_figure([first, second]) == (b"C", "04 comparison")
    budget = _notebook(_png("label-budget", "accuracy against labels", b"D"))
    assert build_book.key_figure([budget, second]) == (b"D", "accuracy against labels")
    assert build_book.key_figure([_notebook(_png(None, "x", b"E"))]) is None


def test_launch_badges_point_at_the_books_own_images() -> None:
    badges = ["[![Colab](https://colab.research.google.com/assets/colab-badge.svg)](u) ",
              "[![Binder](https://mybinder.org/badge_logo.svg)](v)"]
    nb = {"cells": [{"cell_type": "markdown", "source": badges},
                    {"cell_type": "code", "source": "'https://mybinder.org/badge_logo.svg'", "outputs": []}]}
    cells = build_book.local_badges(nb)["cells"]
    assert cells[0]["source"] == "[![Colab](../_static/badge-colab.svg)](u) [![Binder](../_static/badge-binder.svg)](v)"
    assert cells[1]["source"] == "'https://mybinder.org/badge_logo.svg'"  # code is shown as it is
    assert all((ROOT / "book" / "_static" / name).exists() for name in build_book.LOCAL_BADGES.values())


def test_read_notebook_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    bad = tmp_path / "x.ipynb"
    bad.write_text("not json")
    with pytest.raises(ValueError, match=r"x\.ipynb.*run\.py run"):
        build_book.read_notebook(bad)
    bad.write_text("[]")
    with pytest.raises(ValueError, match="not a notebook"):
        build_book.read_notebook(bad)


def test_stage_copies_sources_mathjax_and_the_key_figure_keeping_unchanged_files(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    landing = "# Book\n```{figure} docs/img/series-comparison.png\n:alt: A bar chart.\n:width: 100%\n\nCaption.\n```\n"
    for rel, text in {"book/conf.py": "x = 1\n", "book/index.md": landing, "docs/benchmarks.md": "# B\n",
                      "docs/design-notes.md": "# D\n", "docs/img/series-comparison.png": "old",
                      "README.md": "See: ![Comparison bar chart](docs/img/series-comparison.png)\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    mathjax = tmp_path / "mj" / "es5"
    for rel in ("tex-chtml-full.js", "output/chtml/fonts/woff-v2/a.woff", "ui/menu.js", "a11y/x.js", "sre/y.js",
                "tex-svg.js"):
        (mathjax / rel).parent.mkdir(parents=True, exist_ok=True)
        (mathjax / rel).write_text(rel)
    (mathjax.parent / "LICENSE").write_text("Apache")
    monkeypatch.setattr(build_book, "mathjax_dir", lambda: mathjax)
    executed = tmp_path / "01_a.ipynb"
    executed.write_text(json.dumps(_notebook(_png("comparison", "bars", b"PNG"), _png(None, "", b"Q"))))
    src = tmp_path / "src"
    staged = build_book.stage([executed], src, root)
    assert staged == {"pages": ["notebooks/01_a", "docs/benchmarks", "docs/design-notes"], "key_figure": True,
                      "readme_alt": True, "images_without_alt": 1}
    assert (root / "README.md").read_text() == "See: ![bars](docs/img/series-comparison.png)\n"  # the figure's own alt
    assert ":alt: bars\n:width: 100%" in (src / "index.md").read_text()
    assert (root / "book/index.md").read_text() == landing  # the source stays as it is
    assert (root / "docs/img/series-comparison.png").read_bytes() == b"PNG"
    assert (src / "docs/img/series-comparison.png").read_bytes() == b"PNG"
    assert (src / "conf.py").exists() and (src / "notebooks/01_a.ipynb").exists() and (src / "docs/design-notes.md").exists()
    assert (src / "_static/mathjax/tex-chtml-full.js").exists() and (src / "_static/mathjax/LICENSE").exists()
    assert (src / "_static/mathjax/output/chtml/fonts/woff-v2/a.woff").exists()
    assert not (src / "_static/mathjax/tex-svg.js").exists()  # only what the site uses
    page = src / "notebooks/01_a.ipynb"
    _age(page, 1000)
    before = page.stat().st_mtime
    assert build_book.stage([executed], src, root)["readme_alt"] is False  # already up to date
    assert page.stat().st_mtime == before  # unchanged: Sphinx need not read it again


def test_key_figure_alt_goes_into_the_readme_and_the_landing_page_in_their_own_forms() -> None:
    alt = ("Accuracy against labelled reviews. x axis: labelled training reviews (log scale);\n y axis: accuracy (%). "
           "One line per method: TF-IDF [1-2 grams] + LR\\n from 66.0 % at 64 to 86.0 % at 2,400 labelled reviews.")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    updated = build_book.with_key_figure_alt(readme, alt)
    line = "![Accuracy against labelled reviews. x axis: labelled training reviews (log scale); y axis: accuracy (%). " \
           "One line per method: TF-IDF \\[1-2 grams\\] + LR\\\\n from 66.0 % at 64 to 86.0 % at 2,400 labelled reviews." \
           "](docs/img/series-comparison.png)"
    assert line in updated and updated.count("series-comparison.png") == readme.count("series-comparison.png")
    assert len(updated.splitlines()) == len(readme.splitlines())  # one line, so the README stays a single paragraph
    assert build_book.with_key_figure_alt(updated, alt) == updated  # a second build changes nothing
    landing = build_book.with_key_figure_alt((ROOT / "book" / "index.md").read_text(encoding="utf-8"), alt)
    assert "\n:alt: Accuracy against labelled reviews. x axis: labelled training reviews (log scale); y axis" in landing
    assert "TF-IDF [1-2 grams]" in landing  # a directive option is plain text: no Markdown escapes
    assert build_book.with_key_figure_alt("![x](docs/img/other.png)", alt) == "![x](docs/img/other.png)"


def test_count_pages_leaves_out_search_index_and_static_files(tmp_path: Path) -> None:
    for rel in ("index.html", "notebooks/01.html", "docs/b.html", "search.html", "genindex.html", "_static/x.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert build_book.count_pages(tmp_path) == 3


def _literals(path: Path) -> dict:
    """The module-level assignments of literal values in a Python file (read, never executed)."""
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


def test_book_config_builds_offline_from_executed_notebooks() -> None:
    conf = _literals(ROOT / "book" / "conf.py")
    assert conf["nb_execution_mode"] == "off"  # never executes: run.py book passes executed copies
    assert "myst_nb" in conf["extensions"] and "alt_text" in conf["extensions"]
    assert not conf["mathjax_path"].startswith(("http:", "https:", "//"))  # MathJax from the site itself
    assert conf["mathjax_path"] == "mathjax/" + build_book.MATHJAX_PARTS[0]  # what build_book copies to _static/
    assert conf["nb_ipywidgets_js"] == {}
    index = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    assert "notebooks/*" in index and "docs/benchmarks" in index and "docs/design-notes" in index
    assert "run.py tutorial" in index and "run.py test" in index
    assert not re.search(r"!\[[^\]]*\]\(https?://", index)  # badges are local images: the site loads nothing remote


def test_alt_text_extension_copies_output_metadata_alt() -> None:
    pytest.importorskip("myst_nb")
    ext = _load("alt_text", ROOT / "book" / "_ext" / "alt_text.py")

    class Data:
        mime_type = "image/png"
        output_metadata = {"image/png": {"alt": "Loss. x axis: epoch"}}

    wrapped = ext._with_alt(lambda self, data: [{"uri": "a.png"}])
    assert wrapped(None, Data()) == [{"uri": "a.png", "alt": "Loss. x axis: epoch"}]


def test_book_requirements_are_pinned() -> None:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements-book.txt").read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", p) for p in pins), pins
    names = {p.split("==")[0].lower() for p in pins}
    assert {"sphinx", "myst-nb", "sphinx-book-theme", "django-static-mathjax"} <= names


def test_pages_workflow_builds_checks_and_deploys_on_push_to_main() -> None:
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf-8"))
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["branches"] == ["main"]
    assert flow["permissions"]["pages"] == "write" and flow["permissions"]["id-token"] == "write"
    steps = flow["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any("run.py book" in r for r in runs) and any("run.py check-book" in r for r in runs)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "build/book"
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")


def test_readme_shows_the_key_figure_and_links_the_book() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    figure = ROOT / build_book.KEY_FIGURE
    assert f"]({build_book.KEY_FIGURE.as_posix()})" in readme
    assert figure.exists() and figure.stat().st_size < 300_000 and figure.read_bytes()[:4] == b"\x89PNG"
    assert "run.py book" in readme and "github.io" in readme


def test_built_output_is_ignored_by_git() -> None:
    assert "build/" in (ROOT / ".gitignore").read_text().splitlines()
