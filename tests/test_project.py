"""Project hygiene: install files agree, notebooks are committed stripped and follow the series skeleton."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        if match := PIN.match(line.strip()):
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _requirements() -> dict[str, str]:
    return _pins((ROOT / "requirements.txt").read_text().splitlines())


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_every_requirement_is_pinned() -> None:
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    assert entries and all(PIN.match(line) for line in entries), "pin every requirement with =="


def test_binder_environment_matches_requirements() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == _requirements()


def test_binder_scripts_are_strict_and_executable() -> None:
    for name in ("postBuild", "start"):
        path = ROOT / name
        assert path.stat().st_mode & 0o111, f"{name} must be executable"
    assert "set -e" in (ROOT / "postBuild").read_text()


def test_readme_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in ("python3 run.py tutorial", "python3 run.py test", "py run.py tutorial", "py run.py test",
                    "python -m helpers check"):
        assert command in readme, f"the README lacks `{command}`"
    assert "run.py test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_stripped(path: Path) -> None:
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name} cell {i} has outputs: run `jupyter nbconvert --clear-output --inplace {path}`")
    ids = [cell.get("id") for cell in _cells(path)]
    assert all(ids) and len(set(ids)) == len(ids), (
        f"{path.name}: every cell needs its own id (nbformat 4.5): save it from JupyterLab, or use nbformat.validator.normalize")


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_series_skeleton(path: Path) -> None:
    cells = _cells(path)
    text = "\n".join(_source(c) for c in cells)
    title = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown"
    assert "colab.research.google.com/github/" in title and f"{path.name}" in title and "mybinder.org" in title
    assert "Learning objectives" in title and "Run time" in title
    colab = next(_source(c) for c in cells if c["cell_type"] == "code")
    assert '"google.colab" in sys.modules' in colab
    pins = _pins(re.findall(r"\S+==\S+", colab))
    assert pins and all(_requirements().get(name) == version for name, version in pins.items()), "Colab pins drift"
    assert "helpers.preset()" in text and "seed_everything" in text and "environment_report" in text
    for heading in ("Exercises", "Summary", "Further reading"):
        assert re.search(rf"^#+ .*{heading}", text, re.M), f"{path.name} lacks a '{heading}' section"


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_solutions_are_hidden_and_self_checking(path: Path) -> None:
    solutions = [c for c in _cells(path) if "solution" in c.get("metadata", {}).get("tags", [])]
    assert solutions, f"{path.name} has no solution cells (tag 'solution')"
    for cell in solutions:
        assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True, "solutions are collapsed"
        assert re.search(r"assert .*check\(", _source(cell)), "a solution proves itself with assert ...check(...)"


def test_ruff_is_clean() -> None:
    targets = [str(ROOT / p) for p in ("helpers", "tests", "notebooks", "scripts", "run.py")]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *targets], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- teaching text, not a lab log ---------------------------------------------------------------------------

ISO_DATE = re.compile(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b")
LAB_LOG = ("in our run", "an earlier version", "first draft", "reconstructed from the issue", "on a slower day",
           "when the machine was slow", "the project started", "measured on 20", "at night")
WORD_LIMIT, LONG_CELL_LIMIT = 150, 250  # markdown cells; the title cell and a summary may run to the longer limit
README_LINES = 130


def _words(markdown: str) -> int:
    """Words a reader reads: link targets, HTML comments and image badges do not count."""
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    text = re.sub(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)", " ", text)  # badges
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return len(text.split())


def _markdown_cells(path: Path) -> list[tuple[int, str]]:
    return [(i, _source(c)) for i, c in enumerate(_cells(path)) if c["cell_type"] == "markdown"]


def _lab_log_problems(name: str, text: str) -> list[str]:
    problems = [f"{name}: ISO date {m.group(0)!r}" for m in ISO_DATE.finditer(text)]
    lowered = text.lower()
    problems += [f"{name}: lab-log phrase {phrase!r}" for phrase in LAB_LOG if phrase in lowered]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_prose_is_teaching_text(path: Path) -> None:
    problems = []
    for i, text in _markdown_cells(path):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        problems += _lab_log_problems(f"{path.name} markdown cell {i} ({first!r})", text)
        limit = LONG_CELL_LIMIT if i == 0 or re.search(r"^#+ .*Summary", text, re.M) else WORD_LIMIT
        if (n := _words(text)) > limit:
            problems.append(f"{path.name} markdown cell {i} ({first!r}) has {n} words; the limit is {limit}: "
                            "split it between the outputs it discusses, or move the reasoning to docs/design-notes.md")
    assert not problems, "\n".join(problems)


def test_readme_is_a_guide_not_a_log() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    problems = _lab_log_problems("README.md", text)
    lines = len(text.splitlines())
    if lines > README_LINES:
        problems.append(f"README.md has {lines} lines; keep it under {README_LINES} (measurements go to docs/benchmarks.md)")
    assert not problems, "\n".join(problems)


def test_guard_rails_catch_what_they_should() -> None:
    assert _lab_log_problems("x", "Measured on 2026-11-24 in our runs.") == [
        "x: ISO date '2026-11-24'", "x: lab-log phrase 'in our run'", "x: lab-log phrase 'measured on 20'"]
    assert _lab_log_problems("x", "Train for 2 epochs; accuracy 88-90 % across seeds.") == []
    assert _words("A [link](https://example.org/a/b) <!-- hidden words here --> and two") == 4


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_docs_point_at_existing_files_and_headings() -> None:
    sources = [(ROOT / "README.md", (ROOT / "README.md").read_text(encoding="utf-8"))]
    sources += [(p, "\n".join(t for _, t in _markdown_cells(p))) for p in NOTEBOOKS]
    problems = []
    for path, text in sources:
        for target, anchor in re.findall(r"\]\(((?:\.\./)?docs/[\w\-]+\.md)(?:#([\w\-]+))?\)", text):
            doc = (path.parent / target).resolve()
            if not doc.exists():
                problems.append(f"{path.name} links to missing {target}")
            elif anchor and anchor not in {_anchor(h) for h in re.findall(r"^#+ (.+)$", doc.read_text(), re.M)}:
                problems.append(f"{path.name} links to {target}#{anchor}, which is no heading there")
    assert not problems, "\n".join(problems)


def test_maintainer_files_exist() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
    assert (ROOT / "docs" / "design-notes.md").exists()
