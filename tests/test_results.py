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


@pytest.mark.parametrize("content", ["{broken", '{"rows": []}', "null", '"text"', "[1, 2]", ""])
def test_an_unreadable_results_file_is_kept_beside_never_overwritten(isolated_work_dir: Path, content: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    results_path().write_text(content)
    with pytest.raises(ValueError, match="left as it is"):
        load_results()
    assert results_path().read_text() == content  # reading changes nothing
    record_result("02", "LSTM", subset_accuracy=0.8)
    kept = list(isolated_work_dir.glob("results.unreadable-*.json"))
    assert [p.read_text() for p in kept] == [content]
    assert f"kept as {kept[0]}" in capsys.readouterr().out
    assert [r["method"] for r in load_results()] == ["LSTM"]


def test_a_results_file_with_a_bom_is_read(isolated_work_dir: Path) -> None:
    results_path().write_bytes(b"\xef\xbb\xbf" + json.dumps([{"notebook": "01", "method": "old"}]).encode())
    assert [r["method"] for r in load_results()] == ["old"]
    record_result("02", "LSTM", subset_accuracy=0.8)
    assert [r["method"] for r in load_results()] == ["old", "LSTM"]


def test_path_accepts_only_a_results_file(isolated_work_dir: Path) -> None:
    notebook = isolated_work_dir / "lesson.ipynb"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    notebook.write_text('{"cells": []}')
    for wrong in (notebook, isolated_work_dir / "config.json", isolated_work_dir / "results.txt", isolated_work_dir):
        with pytest.raises(ValueError, match="path must be a results file"):
            record_result("02", "LSTM", subset_accuracy=0.8, path=wrong)
    with pytest.raises(TypeError, match="path must be a file path"):
        load_results(42)
    assert notebook.read_text() == '{"cells": []}' and not (isolated_work_dir / "config.json").exists()
    record_result("02", "LSTM", subset_accuracy=0.8, path=str(isolated_work_dir / "my-results.json"))
    assert len(load_results(isolated_work_dir / "my-results.json")) == 1


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"subset_accuracy": 85.0}, ValueError, "between 0 and 1.*0.85 for 85 %"),
    ({"test_accuracy": float("nan")}, ValueError, "test_accuracy must be a finite number"),
    ({"subset_accuracy": "0.8"}, TypeError, "subset_accuracy must be a number, got the string '0.8'"),
    ({"train_seconds": -1.0}, ValueError, "train_seconds must be at least 0"),
    ({"n_params": 1.5}, TypeError, "n_params must be a whole number"),
    ({"labelled_reviews": -3}, ValueError, "labelled_reviews must be at least 0"),
    ({"pretraining": "wikipedia"}, ValueError, "pretraining must be 'none' or 'IMDB unlabelled reviews', or 'external text'"),
    ({"preset": "full"}, ValueError, "preset cannot be passed"),
    ({"val_perplexity": float("inf")}, ValueError, "val_perplexity must be a finite number"),
    ({"probs": np.zeros(3)}, TypeError, "probs must be a JSON value.*tolist"),
    ({"control_interval": [0.1, float("nan")]}, ValueError, r"control_interval\[1\] must be a finite number"),
])
def test_values_are_validated_before_anything_is_written(isolated_work_dir: Path, kwargs: dict, error: type,
                                                        message: str) -> None:
    with pytest.raises(error, match=message):
        record_result("02", "LSTM", **kwargs)
    assert not results_path().exists()


def test_new_columns_and_extra_values_are_plain_json(isolated_work_dir: Path) -> None:
    row = record_result("03", "MiniLM fine-tuned", subset_accuracy=np.float64(0.9), n_params=np.int64(22_000_000),
                        labelled_reviews=np.int64(2_000), pretraining="external text (all-MiniLM-L6-v2)",
                        control_interval=[np.float32(0.5), 0.75], device="cpu", epochs=np.int64(3))
    assert row["labelled_reviews"] == 2_000 and row["pretraining"] == "external text (all-MiniLM-L6-v2)"
    assert type(row["n_params"]) is int and type(row["epochs"]) is int and row["control_interval"] == [0.5, 0.75]
    assert load_results()[0] == row
    assert record_result("02", "LSTM", pretraining="IMDB unlabelled reviews")["labelled_reviews"] is None


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


@pytest.mark.parametrize("value", ["none", "IMDB unlabelled reviews", "external text (all-MiniLM-L6-v2)",
                                   "IMDB reviews (section 3's GPT; its condition saw the training labels)"])
def test_pretraining_names_what_a_model_saw_before_its_labels(tmp_path: Path, value: str) -> None:
    row = record_result("04", "m", subset_accuracy=0.7, pretraining=value, path=tmp_path / "results.json")
    assert row["pretraining"] == value


@pytest.mark.parametrize("value", ["IMDB", "external text", "external text ()", "wikipedia", 3])
def test_pretraining_of_another_form_is_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(ValueError, match="pretraining must be"):
        record_result("04", "m", subset_accuracy=0.7, pretraining=value, path=tmp_path / "results.json")
