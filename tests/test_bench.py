"""The benchmark's target checks read the right rows (the benchmark itself is run by hand: make bench)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def _read(notebook: str, preset: str, label: str):
    return next(read for name, read, _ in bench.METRIC_TARGETS[(notebook, preset)] if name.startswith(label))


def test_recurrent_target_ignores_the_baseline() -> None:
    rows = [{"method": "TF-IDF + logistic regression", "test_accuracy": 0.89},
            {"method": "BiLSTM", "test_accuracy": 0.87}, {"method": "GRU", "test_accuracy": None}]
    assert _read("02_lstm_sentiment", "small", "best recurrent")(rows) == 0.87
    assert _read("02_lstm_sentiment", "small", "TF-IDF")(rows) == 0.89


def test_missing_rows_read_as_none() -> None:
    assert _read("03_bert_classification", "small", "fine-tuned")([]) is None


def test_machine_description_has_the_essentials() -> None:
    info = bench.machine()
    assert info["cpu_count"] >= 1 and info["memory_gb"] > 0 and "packages:" in info["environment"]
