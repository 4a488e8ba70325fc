"""The experiment scripts stay in step with the notebooks whose cells they execute."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("budget_epochs", ROOT / "scripts" / "experiments" / "budget_epochs.py")
budget_epochs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(budget_epochs)


def _code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def test_budget_epochs_finds_each_cell_it_runs_once() -> None:
    cells = _code_cells(budget_epochs.NOTEBOOK)
    for marker in budget_epochs.NEEDED:
        hits = [s for s in cells if s.startswith(marker) or f"\n{marker}" in s]
        assert len(hits) == 1, f"{marker!r} matches {len(hits)} code cells of notebook 03"
    fine_tune = next(s for s in cells if s.startswith("def fine_tune("))
    assert "\n\nstart = time.perf_counter()" in fine_tune  # where the script cuts off section 6's training run


def test_budget_epochs_parses_budgets() -> None:
    assert budget_epochs.parse_budget("256:2,4,6") == (256, [2, 4, 6])
    with pytest.raises(argparse.ArgumentTypeError, match="N:E1,E2"):
        budget_epochs.parse_budget("256")
