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
    assert "make tutorial" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_stripped(path: Path) -> None:
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name} cell {i} has outputs: run `jupyter nbconvert --clear-output --inplace {path}`")


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
    targets = [str(ROOT / p) for p in ("helpers", "tests", "notebooks", "scripts")]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *targets], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
