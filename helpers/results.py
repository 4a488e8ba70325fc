"""A small results store: one JSON file in the learner's own work directory that every notebook appends rows to."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from .data import publish, work_dir
from .runtime import preset

RESULTS_NAME = "results.json"


def results_path() -> Path:
    """The results file: ``results.json`` in the learner's own work directory (never the shared data directory)."""
    return work_dir() / RESULTS_NAME


def load_results(path: Path | None = None) -> list[dict[str, Any]]:
    """All recorded rows (an empty list when nothing was recorded yet)."""
    path = path or results_path()
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and re-run the notebooks.") from err
    return rows if isinstance(rows, list) else []


def record_result(notebook: str, method: str, *, subset_accuracy: float | None = None,
                  test_accuracy: float | None = None, train_seconds: float | None = None,
                  n_params: int | None = None, ms_per_review: float | None = None,
                  path: Path | None = None, **extra: Any) -> dict[str, Any]:
    """Insert or replace the row for (notebook, method, preset) and return it; atomic, under ``results.json.lock``."""
    path = path or results_path()
    row: dict[str, Any] = {
        "notebook": notebook, "method": method, "preset": preset(),
        "subset_accuracy": subset_accuracy, "test_accuracy": test_accuracy,
        "train_seconds": train_seconds, "n_params": n_params, "ms_per_review": ms_per_review,
        **extra, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    key = (notebook, method, row["preset"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock")):  # read-modify-write: two notebooks at once lose no row
        rows = [r for r in load_results(path) if (r.get("notebook"), r.get("method"), r.get("preset")) != key]
        rows.append(row)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(rows, fh, indent=1, default=float)
            publish(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return row
