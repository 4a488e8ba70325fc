"""The results store: upserts, a corrupt file, the learner's own folder, and no row lost to concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from helpers import runtime
from helpers.results import load_results, record_result, results_path

PROCESSES, ROWS_EACH = 8, 5


def test_results_go_to_the_work_dir_never_the_data_dir(isolated_data_dir: Path, isolated_work_dir: Path) -> None:
    record_result("02", "LSTM", subset_accuracy=0.8)
    assert results_path() == isolated_work_dir / "results.json" and results_path().exists()
    assert not (isolated_data_dir / "results.json").exists()
    (isolated_data_dir / "results.json").write_text('[{"notebook": "02", "method": "someone else"}]')
    assert [r["method"] for r in load_results()] == ["LSTM"]  # another learner's file in the shared folder is not read


def test_upserts_per_notebook_method_and_preset(isolated_work_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.PRESET_ENV, raising=False)
    assert load_results() == []
    record_result("02", "LSTM", subset_accuracy=0.8, n_params=10)
    record_result("02", "LSTM", subset_accuracy=0.85, n_params=10, epochs=3)
    record_result("02", "GRU", subset_accuracy=np.float32(0.86))
    monkeypatch.setenv(runtime.PRESET_ENV, "full")
    record_result("02", "LSTM", subset_accuracy=0.9)
    rows = load_results()
    assert [(r["method"], r["preset"], r["subset_accuracy"]) for r in rows] == [
        ("LSTM", "small", 0.85), ("GRU", "small", pytest.approx(0.86)), ("LSTM", "full", 0.9)]
    assert rows[0]["epochs"] == 3 and json.loads(results_path().read_text())  # plain JSON on disk
    assert sorted(p.name for p in isolated_work_dir.iterdir()) == ["results.json", "results.json.lock"]


def test_corrupt_results_file_says_what_to_do() -> None:
    results_path().write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON.*delete it"):
        load_results()
    with pytest.raises(ValueError, match="delete it"):
        record_result("02", "LSTM", subset_accuracy=0.8)  # nothing is overwritten either
    assert results_path().read_text() == "{broken"


def _record_rows(path: str, worker: int, barrier) -> None:  # noqa: ANN001 - a multiprocessing Barrier
    barrier.wait(timeout=120)  # every process starts writing at the same moment
    for row in range(ROWS_EACH):
        record_result(f"nb{worker}", f"method{row}", subset_accuracy=row / 10, path=Path(path))


def test_eight_processes_writing_at_once_lose_no_row(isolated_work_dir: Path) -> None:
    path = isolated_work_dir / "results.json"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    workers = [ctx.Process(target=_record_rows, args=(str(path), i, barrier)) for i in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    rows = load_results(path)
    assert len(rows) == PROCESSES * ROWS_EACH
    assert {(r["notebook"], r["method"]) for r in rows} == {
        (f"nb{i}", f"method{j}") for i in range(PROCESSES) for j in range(ROWS_EACH)}
    assert not list(isolated_work_dir.glob("*.tmp"))
