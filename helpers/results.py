"""A small results store: one JSON file in the learner's own work directory that every notebook appends rows to."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from . import validate as check
from .data import publish, work_dir
from .runtime import PRESET_ENV, PRESETS, preset
from .validate import describe

RESULTS_NAME = "results.json"
PRETRAINING_NONE, PRETRAINING_IMDB, PRETRAINING_EXTERNAL = "none", "IMDB unlabelled reviews", "external text"
PRETRAINING = (PRETRAINING_NONE, PRETRAINING_IMDB)
# or one of these followed by what exactly, in brackets: "external text (all-MiniLM-L6-v2)", "IMDB reviews (...)"
PRETRAINING_DETAILED = (PRETRAINING_EXTERNAL, "IMDB reviews")
RESERVED = frozenset({"notebook", "method", "preset", "recorded_at"})


class UnreadableResults(ValueError):
    """The results file holds no rows this store can read (invalid JSON, or not a list of rows); it is never overwritten."""


def results_path() -> Path:
    """The results file: ``results.json`` in the learner's own work directory (never the shared data directory)."""
    return work_dir() / RESULTS_NAME


def _rows(path: Path) -> list[dict[str, Any]]:
    """The rows in ``path`` (none when it does not exist); ``UnreadableResults`` saying what it holds otherwise."""
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a file saved with a BOM is read too
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableResults(f"{path} is not valid JSON ({err})") from err
    except OSError as err:
        raise UnreadableResults(f"{path} cannot be read ({err})") from err
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise UnreadableResults(f"{path} holds {describe(rows)}, not a list of result rows")
    return rows


def _results_file(path: Path | str | None) -> Path:
    if path is None:
        return results_path()
    path = check.path(path, "path")
    if path.suffix != ".json" or "results" not in path.name or path.is_dir():
        raise ValueError(f"path must be a results file, a .json file named like {RESULTS_NAME} (default: "
                         f"results_path()), got {str(path)!r}")
    return path


def load_results(path: Path | str | None = None) -> list[dict[str, Any]]:
    """All recorded rows (an empty list when nothing was recorded yet); ``UnreadableResults`` for a file of no rows."""
    path = _results_file(path)
    try:
        return _rows(path)
    except UnreadableResults as err:
        raise UnreadableResults(f"{err}. It is left as it is; record_result moves it aside (renamed, never deleted) "
                                "and starts a new file.") from err


def _move_aside(path: Path, reason: str) -> Path:
    aside = path.with_name(f"{path.stem}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.stem}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}-{n}{path.suffix}")
    os.replace(path, aside)
    print(f"{reason}. It was kept as {aside} (nothing in it was deleted) and a new {path.name} is started.")
    return aside


def _json_value(value: Any, name: str) -> Any:
    """``value`` as plain JSON (NumPy scalars become numbers); a ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        return check.number(value, name) if isinstance(value, float) else value
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v, f"{name}[{k!r}]") for k, v in value.items()}
    hint = "; pass a number or a list (array.tolist())" if isinstance(value, np.ndarray) else ""
    raise TypeError(f"{name} must be a JSON value (a number, str, bool, None, list or dict of them), got "
                    f"{describe(value)}{hint}")


def _optional(value: Any, name: str, kind: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return None if value is None else kind(value, name, *args, **kwargs)


def _pretraining(value: str, name: str) -> str:
    detailed = isinstance(value, str) and value.startswith(tuple(f"{p} (" for p in PRETRAINING_DETAILED)) \
        and value.endswith(")") and not value.endswith("()")
    if not isinstance(value, str) or not (value in PRETRAINING or detailed):
        detail = " or ".join(map(repr, PRETRAINING_DETAILED))
        raise ValueError(f"{name} must be {' or '.join(map(repr, PRETRAINING))}, or {detail} "
                         f"followed by what exactly in brackets, e.g. 'external text (all-MiniLM-L6-v2)'; "
                         f"got {describe(value)}")
    return value


def _accuracy(value: Any, name: str) -> float:
    hint = "Accuracies are shares, e.g. 0.85 for 85 %." if _is_percent(value) else ""
    return check.number(value, name, 0.0, 1.0, hint=hint)


def _is_percent(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool) and 1 < float(value) <= 100


def record_result(notebook: str, method: str, *, subset_accuracy: float | None = None,
                  test_accuracy: float | None = None, train_seconds: float | None = None,
                  n_params: int | None = None, ms_per_review: float | None = None,
                  labelled_reviews: int | None = None, pretraining: str | None = None,
                  path: Path | str | None = None, **extra: Any) -> dict[str, Any]:
    """Insert or replace the row for (notebook, method, preset) and return it; atomic, under ``results.json.lock``."""
    path = _results_file(path)
    for name, value in (("notebook", notebook), ("method", method)):
        if not isinstance(value, str) or not value.strip():
            raise TypeError(f"{name} must be a non-empty str such as '02_lstm_sentiment', got {describe(value)}")
    if reserved := sorted(set(extra) & RESERVED):
        raise ValueError(f"{', '.join(reserved)} cannot be passed: the row sets them itself (the preset comes from "
                         f"${PRESET_ENV})")
    row: dict[str, Any] = {
        "notebook": notebook, "method": method, "preset": check.one_of(preset(), "preset", PRESETS),
        "subset_accuracy": _optional(subset_accuracy, "subset_accuracy", _accuracy),
        "test_accuracy": _optional(test_accuracy, "test_accuracy", _accuracy),
        "train_seconds": _optional(train_seconds, "train_seconds", check.number, 0.0),
        "n_params": _optional(n_params, "n_params", check.integer, 0),
        "ms_per_review": _optional(ms_per_review, "ms_per_review", check.number, 0.0),
        "labelled_reviews": _optional(labelled_reviews, "labelled_reviews", check.integer, 0),
        "pretraining": _optional(pretraining, "pretraining", _pretraining),
        **{key: _json_value(value, key) for key, value in extra.items()},
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    key = (notebook, method, row["preset"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock")):  # read-modify-write: two notebooks at once lose no row
        try:
            rows = _rows(path)
        except UnreadableResults as err:
            _move_aside(path, str(err))
            rows = []
        rows = [r for r in rows if (r.get("notebook"), r.get("method"), r.get("preset")) != key]
        rows.append(row)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(rows, fh, indent=1, allow_nan=False)
            publish(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return row
