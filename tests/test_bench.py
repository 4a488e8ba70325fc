"""The benchmark's target checks read the right rows (the benchmark itself is run by hand: make bench)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "tools" / "bench.py")
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
    assert info["cpu_count"] >= 1 and info["memory_gb"] > 0 and info["python"] and "torch" in info["packages"]


def _report(preset: str, cpu: str, gpu: str, notebooks: dict[str, float]) -> dict:
    machine = {"cpu": cpu, "cpu_count": 2, "memory_gb": 23.5, "gpu": gpu, "platform": "Linux", "python": "3.11.7",
               "packages": {"torch": "2.13.0"}}
    entries = [{"notebook": name, "date": "2030-01-02T03:04:05", "precision": "float32", "seconds": seconds,
                "peak_gb": 1.2, "returncode": 0, "checks": [{"what": "wall time (s)", "value": seconds,
                                                             "target": "<= 240", "met": seconds <= 240}],
                "rows": [{"method": "GRU", "subset_accuracy": 0.88, "test_accuracy": None, "train_seconds": 50.0,
                          "n_params": 1000, "ms_per_review": 0.5}]}
               for name, seconds in notebooks.items()]
    return {"preset": preset, "machine": machine, "notebooks": entries}


def test_merge_replaces_its_own_section_and_keeps_the_others() -> None:
    store = bench.merge({}, _report("small", "CPU A", "none", {"01_word_embeddings": 100, "02_lstm_sentiment": 200}))
    store = bench.merge(store, _report("full", "CPU B", "H200", {"03_bert_classification": 900}))
    store = bench.merge(store, _report("small", "CPU A", "none", {"02_lstm_sentiment": 250}))
    small = store["sections"][bench.section_key("small", _report("small", "CPU A", "none", {})["machine"])]
    assert {n: e["seconds"] for n, e in small["notebooks"].items()} == {"01_word_embeddings": 100, "02_lstm_sentiment": 250}
    assert len(store["sections"]) == 2
    md = bench.render(store)
    assert "## Small preset: 2 × CPU A, GPU: none" in md and "## Full preset: 2 × CPU B, GPU: H200" in md
    assert "| 02_lstm_sentiment | 250 | 1.20 | float32 | ran |" in md and "**missed**" in md
    assert "| 01–02 in order" not in md  # a series total appears only when every notebook of it was run


def test_docs_benchmarks_is_generated_and_names_every_notebook() -> None:
    import json

    store = json.loads((ROOT / "docs" / "benchmarks.json").read_text(encoding="utf-8"))
    md = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert md == bench.render(store), "docs/benchmarks.md differs from docs/benchmarks.json: run `make bench`"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"| {notebook.stem} |" in md, f"docs/benchmarks.md has no row for {notebook.stem}: run `make bench`"


def test_gpt_targets_read_perplexity_and_control() -> None:
    rows = [{"method": "GPT from scratch as generative classifier", "val_perplexity": 57.0, "bigram_perplexity": 66.0,
             "control_accuracy": 0.72, "control_interval": [0.62, 0.80]},
            {"method": "transformer encoder from scratch", "subset_accuracy": 0.7}]
    gain = _read("04_transformers_from_scratch", "small", "GPT perplexity")(rows)
    assert abs(gain - (1 - 57 / 66)) < 1e-12
    assert _read("04_transformers_from_scratch", "small", "GPT control accuracy, lower end")(rows) == 0.62
    assert _read("04_transformers_from_scratch", "small", "GPT control accuracy with guidance")(rows) is None
    assert _read("04_transformers_from_scratch", "full", "GPT control")(rows) == 0.72
    assert _read("04_transformers_from_scratch", "small", "GPT perplexity")(rows[1:]) is None


NB04_ROWS = [{"method": "GPT from scratch as generative classifier", "val_perplexity": 60.0, "bigram_perplexity": 80.0,
              "trigram_perplexity": 45.0, "unigram_perplexity": 400.0, "val_bits_per_byte": 1.9,
              "bigram_bits_per_byte": 2.0, "trigram_bits_per_byte": 1.7, "control_accuracy": 0.70,
              "control_interval": [0.64, 0.75], "bigram_control_accuracy": 0.66, "bigram_control_interval": [0.6, 0.71],
              "guidance": 1.0, "guided_control_accuracy": 0.94, "guided_control_interval": [0.91, 0.96],
              "guided_distinct_2": 0.985, "bigram_guided_control_accuracy": 0.99, "bigram_guided_distinct_2": 0.65},
             {"method": "GPT body pretrained on IMDB, fine-tuned", "pretraining": "IMDB", "labelled_reviews": 2000,
              "budget_accuracies": {"500": [0.60, 0.62, 0.64], "2000": [0.75, 0.74, 0.76]}},
             {"method": "GPT body from scratch, fine-tuned", "pretraining": "none", "labelled_reviews": 2000,
              "budget_accuracies": {"500": [0.50, 0.52, 0.51], "2000": [0.72, 0.73, 0.71]}}]


def test_gpt_targets_read_trigram_control_baseline_and_pretraining_gap() -> None:
    assert abs(_read("04_transformers_from_scratch", "small", "GPT perplexity below the trigram")(NB04_ROWS)
               - (1 - 60 / 45)) < 1e-12
    assert abs(_read("04_transformers_from_scratch", "small", "GPT control accuracy minus")(NB04_ROWS) - 0.04) < 1e-12
    assert _read("04_transformers_from_scratch", "small", "GPT control accuracy with guidance")(NB04_ROWS) == 0.91
    assert abs(_read("04_transformers_from_scratch", "small", "with guidance 1, GPT distinct-2")(NB04_ROWS) - 0.335) < 1e-9
    gap = _read("04_transformers_from_scratch", "small", "pretrained GPT classifier")(NB04_ROWS)
    assert abs(gap - 0.03) < 1e-9  # 2,000 labels: 0.75 - 0.72; 500 labels: 0.62 - 0.51
    assert _read("04_transformers_from_scratch", "small", "pretrained GPT classifier")(NB04_ROWS[:2]) is None
    assert _read("04_transformers_from_scratch", "small", "GPT perplexity below the trigram")(NB04_ROWS[1:]) is None


def test_lm_figures_render_only_for_notebook_04_with_new_fields() -> None:
    entry = {"notebook": "04_transformers_from_scratch", "rows": NB04_ROWS}
    md = "\n".join(bench.lm_figures(entry))
    assert "| trigram | 45.0 | 1.700 |" in md and "| GPT | 60.0 | 1.900 |" in md
    assert "| 500 | 0.600 / 0.620 / 0.640 | 0.500 / 0.520 / 0.510 | +11.0 |" in md
    assert "class-conditional bigram 0.660" in md
    assert "With guidance 1: GPT control 0.940 (0.910-0.960), distinct-2 0.985; class-conditional bigram 0.990" in md
    assert bench.lm_figures({"notebook": "04_transformers_from_scratch", "rows": [{"method": "GPT", "val_perplexity": 5}]}) == []
    assert bench.lm_figures({**entry, "notebook": "03_bert_classification"}) == []


def test_label_budget_rows_become_one_table() -> None:
    rows = [{"method": "TF-IDF + LR, 256 labelled reviews", "subset_accuracy": 0.79, "labelled_reviews": 256,
             "budget_method": "TF-IDF + LR", "experiment": "label budget", "draws": [0.78, 0.79, 0.80]},
            {"method": "MiniLM fine-tuned, 256 labelled reviews", "subset_accuracy": 0.81, "labelled_reviews": 256,
             "budget_method": "MiniLM fine-tuned", "experiment": "label budget", "draws": [0.81]},
            {"method": "MiniLM-L6 fine-tuned", "subset_accuracy": 0.876, "labelled_reviews": 2400,
             "budget_method": "MiniLM fine-tuned", "pretraining": "external text (all-MiniLM-L6-v2)"},
            {"method": "GRU", "subset_accuracy": 0.88}]
    md = "\n".join(bench.label_budget_table(rows))
    assert "| labelled reviews | TF-IDF + LR | MiniLM fine-tuned |" in md
    assert "| 256 | 79.0 (78.0–80.0, 3 draws) | 81.0 (1 run) |" in md
    assert "| 2,400 | – | 87.6 (1 run) |" in md
    assert bench.label_budget_table([{"method": "GRU", "subset_accuracy": 0.88}]) == []


def test_rows_table_shows_label_counts_and_keeps_budget_rows_out() -> None:
    report = _report("small", "CPU A", "none", {"03_bert_classification": 300})
    report["notebooks"][0]["rows"] = [
        {"method": "MiniLM-L6 fine-tuned", "subset_accuracy": 0.876, "labelled_reviews": 2400,
         "pretraining": "external text (all-MiniLM-L6-v2)", "budget_method": "MiniLM fine-tuned"},
        {"method": "TF-IDF + LR, 64 labelled reviews", "subset_accuracy": 0.72, "labelled_reviews": 64,
         "pretraining": "none", "budget_method": "TF-IDF + LR", "experiment": "label budget", "draws": [0.72]},
        {"method": "GRU", "subset_accuracy": 0.88}]
    md = bench.render(bench.merge({}, report))
    assert "| 03_bert_classification | MiniLM-L6 fine-tuned | 2,400 | external text (all-MiniLM-L6-v2) | 0.876 |" in md
    assert "| 03_bert_classification | GRU | not recorded | not recorded | 0.880 |" in md  # recorded by older code
    assert "TF-IDF + LR, 64 labelled reviews" not in md and "| 64 | 72.0 (1 run) | – |" in md


def test_seed_runs_render_one_column_per_seed() -> None:
    def check(value: float) -> dict:
        return {"what": "GPT control accuracy, lower end", "value": value, "target": ">= 0.75", "met": value >= 0.75}

    entry = {"notebook": "04_transformers_from_scratch", "seed_runs": [
        {"seed": 42, "returncode": 0, "checks": [check(0.78)]}, {"seed": 0, "returncode": 0, "checks": [check(0.74)]}]}
    md = "\n".join(bench.seed_lines([entry, {"notebook": "01_word_embeddings", "seed_runs": []}]))
    assert "| measure | target | seed 42 | seed 0 | met for every seed |" in md
    assert "| GPT control accuracy, lower end | >= 0.75 | 0.78 | 0.74 | **no** |" in md
    assert "01_word_embeddings" not in md  # one run: nothing to compare across seeds


def test_side_by_side_reports_the_worst_seed() -> None:
    def run(seed: int, ours: float, recipe: float) -> dict:
        return {"seed": seed, "notebook_gpt": {"perplexity": ours, "tokens_per_second": 11000},
                "nanogpt_recipe": {"perplexity": recipe, "tokens_per_second": 7500},
                "notebook_vs_recipe": ours / recipe - 1, "trigram_perplexity": 41.0}

    entry = {"side_by_side": {"runs": [run(42, 69.0, 98.0), run(0, 69.0, 80.0)]}}
    assert abs(bench._side_by_side_worst(entry) - (1 - 69 / 80)) < 1e-9
    md = "\n".join(bench.side_by_side_lines(entry))
    assert "| 0 | 69.0, 11,000 | 80.0, 7,500 | -14 % | 41.0 |" in md
    assert bench._side_by_side_worst({}) is None and bench.side_by_side_lines({}) == []


def test_seed_list_reads_commas_and_refuses_the_rest() -> None:
    import argparse

    import pytest

    assert bench.seed_list("42,0,7") == [42, 0, 7]
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated"):
        bench.seed_list("42 0")


def test_precision_reads_what_a_timing_notebook_printed(tmp_path) -> None:
    import json

    def executed(text: str) -> Path:
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": [text]}]}]}), encoding="utf-8")
        return path

    line = "forward and backward on 4 windows: float32 30 ms, bfloat16 20 ms; training in bfloat16 autocast\n"
    assert bench.precision("04_transformers_from_scratch", "none", executed(line)) == "bfloat16 (timed)"
    line = "training step, length 128, batch 16: float32 9.0 reviews/s; from here on the notebook computes in float32\n"
    assert bench.precision("03_bert_classification", "none", executed(line)) == "float32 (timed)"
    assert bench.precision("01_word_embeddings", "none", executed("nothing timed\n")) == "float32"  # the rule


def test_only_the_first_seed_writes_the_copy_the_book_reads(tmp_path) -> None:
    assert bench.copy_dir(tmp_path, None, None) == tmp_path
    assert bench.copy_dir(tmp_path, [42, 0, 7], 42) == tmp_path
    assert bench.copy_dir(tmp_path, [42, 0, 7], 7) == tmp_path / "seed-7"
