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


NB03, NB03B = "03_bert_classification", "03b_label_budget"


def test_notebook_03_target_reads_its_top_layer_row_not_the_probe() -> None:
    rows = [{"method": "MiniLM-L6 frozen mean features + logistic regression", "subset_accuracy": 0.80},
            {"method": "MiniLM-L6 fine-tuned (top 2 layers)", "subset_accuracy": 0.84, "test_accuracy": None}]
    assert _read(NB03, "small", "fine-tuned BERT, shared test subset")(rows) == 0.84
    assert [(label, target) for label, _, target in bench.METRIC_TARGETS[(NB03, "small")]] == \
        [("fine-tuned BERT, shared test subset", 0.82)]
    assert _read(NB03, "small", "fine-tuned")(rows[:1]) is None  # the probe is not fine-tuned
    assert [label for label, _, _ in bench.METRIC_TARGETS[(NB03, "full")]] == ["fine-tuned BERT, full test set"]


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


NB04_ROW = {"method": "GPT language model", "val_perplexity": 60.0, "bigram_perplexity": 80.0,
            "trigram_perplexity": 45.0, "unigram_perplexity": 400.0, "val_bits_per_byte": 1.9,
            "bigram_bits_per_byte": 2.0, "trigram_bits_per_byte": 1.7, "tokens_per_second": 11000.0, "steps": 2000}
NB04B_ROW = {"method": "GPT sentiment control", "control_accuracy": 0.70, "control_interval": [0.64, 0.75],
             "bigram_control_accuracy": 0.66, "bigram_control_interval": [0.6, 0.71], "guidance": 1.0,
             "guided_control_accuracy": 0.94, "guided_control_interval": [0.91, 0.96], "guided_distinct_2": 0.985,
             "bigram_guided_control_accuracy": 0.99, "bigram_guided_distinct_2": 0.65}
NB04, NB04B = "04_transformers_from_scratch", "04b_sentiment_control"


def test_gpt_targets_are_split_between_notebook_04_and_04b() -> None:
    def targets(notebook: str, preset: str) -> list[tuple[str, float]]:
        return [(label.split(" (")[0], target) for label, _, target in bench.METRIC_TARGETS[(notebook, preset)]]

    assert targets(NB04, "small") == [("GPT perplexity below the bigram's", 0.0), ("GPT perplexity below the trigram's", 0.0)]
    assert targets(NB04, "full") == [("GPT perplexity below the bigram's", 0.30), ("GPT perplexity below the trigram's", 0.0)]
    assert targets(NB04B, "small") == [("GPT control accuracy, lower end of its 95 % interval", 0.5),
                                       ("GPT control accuracy with guidance 1, lower end of its 95 % interval", 0.75),
                                       ("GPT control accuracy minus the class-conditional bigram's", 0.0),
                                       ("with guidance 1, GPT distinct-2 minus the class-conditional bigram's", 0.1)]
    assert targets(NB04B, "full") == [("GPT control accuracy", 0.90)]
    labels = [label for key, checks in bench.METRIC_TARGETS.items() for label, _, _ in checks]
    assert not any("classifier" in label or "pretrained" in label for label in labels)  # those rows no longer exist
    assert not hasattr(bench, "_finetune_rows") and not hasattr(bench, "_smallest_gap")


def test_notebook_04_targets_read_its_language_model_row() -> None:
    rows = [NB04_ROW, {"method": "TF-IDF + LR", "subset_accuracy": 0.8}]
    assert abs(_read(NB04, "small", "GPT perplexity below the bigram")(rows) - (1 - 60 / 80)) < 1e-12
    assert abs(_read(NB04, "small", "GPT perplexity below the trigram")(rows) - (1 - 60 / 45)) < 1e-12
    assert abs(_read(NB04, "full", "GPT perplexity below the bigram")(rows) - 0.25) < 1e-12
    assert _read(NB04, "small", "GPT perplexity below the bigram")([NB04B_ROW]) is None  # 04b has no perplexity
    assert _read(NB04, "small", "GPT perplexity below the trigram")([]) is None


def test_notebook_04b_targets_read_its_control_row() -> None:
    rows = [NB04B_ROW]  # no val_perplexity: the control row is found on its own
    assert _read(NB04B, "small", "GPT control accuracy, lower end")(rows) == 0.64
    assert _read(NB04B, "small", "GPT control accuracy with guidance")(rows) == 0.91
    assert abs(_read(NB04B, "small", "GPT control accuracy minus")(rows) - 0.04) < 1e-12
    assert abs(_read(NB04B, "small", "with guidance 1, GPT distinct-2")(rows) - 0.335) < 1e-9
    assert _read(NB04B, "full", "GPT control accuracy")(rows) == 0.70
    for label in ("GPT control accuracy, lower end", "GPT control accuracy with guidance", "GPT control accuracy minus",
                  "with guidance 1, GPT distinct-2"):
        assert _read(NB04B, "small", label)([NB04_ROW]) is None, label  # notebook 04's row has no control figures
    unguided = {k: v for k, v in NB04B_ROW.items() if "guid" not in k}
    assert _read(NB04B, "small", "GPT control accuracy with guidance")([unguided]) is None
    assert _read(NB04B, "small", "with guidance 1, GPT distinct-2")([unguided]) is None


def test_lm_figures_for_notebook_04_and_control_figures_for_04b() -> None:
    entry_04, entry_04b = {"notebook": NB04, "rows": [NB04_ROW]}, {"notebook": NB04B, "rows": [NB04B_ROW]}
    md = "\n".join(bench.lm_figures(entry_04))
    assert "| trigram | 45.0 | 1.700 |" in md and "| GPT | 60.0 | 1.900 |" in md and "| unigram | 400.0 | – |" in md
    assert "Control" not in md and "guidance" not in md
    md = "\n".join(bench.control_figures(entry_04b))
    assert "GPT 0.700 (0.640-0.750), class-conditional bigram 0.660 (0.600-0.710)" in md
    assert "With guidance 1: GPT control 0.940 (0.910-0.960), distinct-2 0.985; class-conditional bigram 0.990" in md
    assert bench.lm_figures(entry_04b) == [] and bench.control_figures(entry_04) == []
    assert bench.lm_figures({"notebook": NB04, "rows": [{"method": "GPT", "val_perplexity": 5}]}) == []
    assert bench.lm_figures({**entry_04, "notebook": "03_bert_classification"}) == []
    assert bench.control_figures({**entry_04b, "notebook": NB04}) == []


def test_render_shows_04s_perplexity_04bs_control_and_the_series_total_with_04b() -> None:
    names = ("01_word_embeddings", "02_lstm_sentiment", "03_bert_classification", NB04, NB04B)
    report = _report("small", "CPU A", "none", dict.fromkeys(names, 150.0) | {NB03B: 1000.0})  # 03b: not in the totals
    for entry in report["notebooks"]:
        entry["rows"] = {NB04: [NB04_ROW], NB04B: [NB04B_ROW]}.get(entry["notebook"], entry["rows"])
    md = bench.render(bench.merge({}, report))
    assert md.index("| 04_transformers_from_scratch | 150 |") < md.index("| 04b_sentiment_control | 150 |")
    assert "| 01–03 in order | total wall time (s) | 450 | <= 600 | met |" in md
    assert "| 01–04b in order | total wall time (s) | 750 | <= 900 | met |" in md
    assert "| 04b_sentiment_control | GPT sentiment control |" in md
    assert md.index("Notebook 04, validation") < md.index("Notebook 04b, control accuracy")
    md = bench.render(bench.merge({}, _report("small", "CPU A", "none", dict.fromkeys(names[:4], 150.0))))
    assert "01–04" not in md  # without 04b the longer series has no total


def test_every_notebook_is_benchmarked_with_budgets_and_a_framework() -> None:
    found = bench.notebook_paths([])
    stems = [p.stem for p in found]
    assert stems == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) and NB04B in stems
    assert stems.index(NB04) < stems.index(NB04B)  # 04b reads the tokenizer notebook 04 trained
    for stem in stems:
        assert (stem, "small") in bench.RESOURCE_TARGETS and stem in bench.FRAMEWORK, stem
    assert bench.RESOURCE_TARGETS[(NB04B, "small")] == (240, 2.0) and bench.FRAMEWORK[NB04B] == "torch"
    assert bench.RESOURCE_TARGETS[(NB03, "small")] == (240, 1.4)
    assert bench.RESOURCE_TARGETS[(NB03B, "small")] == (360, 1.8) and bench.FRAMEWORK[NB03B] == "torch"
    assert stems.index(NB03) < stems.index(NB03B) < stems.index(NB04)
    assert any(names[-1] == NB04B for names, _ in bench.SERIES_TARGETS)
    assert all(NB03B not in names for names, _ in bench.SERIES_TARGETS)  # a bonus notebook: not in the series totals
    assert bench.series_label(("01_word_embeddings", "02_lstm_sentiment", "03_bert_classification", NB04, NB04B)) \
        == "01–04b in order"
    assert bench.notebook_paths(["notebooks/04b_sentiment_control.ipynb"]) == [Path("notebooks/04b_sentiment_control.ipynb")]


def test_label_budget_rows_of_notebook_03b_become_one_table() -> None:
    rows = [{"method": "TF-IDF + LR, 256 labelled reviews", "subset_accuracy": 0.79, "labelled_reviews": 256,
             "budget_method": "TF-IDF + LR", "experiment": "label budget", "draws": [0.78, 0.79, 0.80]},
            {"method": "MiniLM fine-tuned, 256 labelled reviews", "subset_accuracy": 0.81, "labelled_reviews": 256,
             "budget_method": "MiniLM fine-tuned", "experiment": "label budget", "draws": [0.81]},
            {"method": "MiniLM fine-tuned, 2,400 labelled reviews", "subset_accuracy": 0.876, "labelled_reviews": 2400,
             "budget_method": "MiniLM fine-tuned", "experiment": "label budget", "draws": [0.876]},
            {"method": "GRU", "subset_accuracy": 0.88}]
    old_03 = [{"method": "TF-IDF + LR, 64 labelled reviews", "subset_accuracy": 0.7, "labelled_reviews": 64,
               "budget_method": "TF-IDF + LR", "experiment": "label budget", "draws": [0.7]},  # recorded by older code
              {"method": "MiniLM-L6 fine-tuned (top 2 layers)", "subset_accuracy": 0.84, "labelled_reviews": 2400}]
    md = "\n".join(bench.label_budget_table([{"notebook": NB03, "rows": old_03}, {"notebook": NB03B, "rows": rows}]))
    assert "Label budget (notebook 03b)" in md
    assert "| labelled reviews | TF-IDF + LR | MiniLM fine-tuned |" in md
    assert "| 256 | 79.0 (78.0–80.0, 3 draws) | 81.0 (1 run) |" in md
    assert "| 2,400 | – | 87.6 (1 run) |" in md
    assert "| 64 |" not in md and "84.0" not in md  # notebook 03's rows are not read
    assert bench.label_budget_table([{"notebook": NB03, "rows": old_03}]) == []
    assert bench.label_budget_table([{"notebook": NB03B, "rows": [{"method": "GRU", "subset_accuracy": 0.88}]}]) == []


def test_rows_table_shows_label_counts_and_keeps_budget_rows_out() -> None:
    report = _report("small", "CPU A", "none", {NB03: 200, NB03B: 300})
    report["notebooks"][0]["rows"] = [
        {"method": "MiniLM-L6 fine-tuned (top 2 layers)", "subset_accuracy": 0.846, "labelled_reviews": 2400,
         "pretraining": "external text (all-MiniLM-L6-v2)", "train_layers": 2},
        {"method": "GRU", "subset_accuracy": 0.88}]
    report["notebooks"][1]["rows"] = [
        {"method": "TF-IDF + LR, 64 labelled reviews", "subset_accuracy": 0.72, "labelled_reviews": 64,
         "pretraining": "none", "budget_method": "TF-IDF + LR", "experiment": "label budget", "draws": [0.72]},
        {"method": "MiniLM fine-tuned, 64 labelled reviews", "subset_accuracy": 0.75, "labelled_reviews": 64,
         "pretraining": "external text (all-MiniLM-L6-v2)", "budget_method": "MiniLM fine-tuned",
         "experiment": "label budget", "draws": [0.75], "epochs": 38}]
    md = bench.render(bench.merge({}, report))
    assert "| 03_bert_classification | MiniLM-L6 fine-tuned (top 2 layers) | 2,400 | external text (all-MiniLM-L6-v2) " \
           "| 0.846 |" in md
    assert "| 03_bert_classification | GRU | not recorded | not recorded | 0.880 |" in md  # recorded by older code
    assert "| 03b_label_budget | 300 | 1.20 | float32 | ran |" in md
    assert "labelled reviews |" in md and "| 64 | 72.0 (1 run) | 75.0 (1 run) |" in md
    assert "TF-IDF + LR, 64 labelled reviews" not in md and "MiniLM fine-tuned, 64" not in md  # only in the budget table


def test_seed_runs_render_one_column_per_seed() -> None:
    def check(value: float) -> dict:
        return {"what": "GPT control accuracy, lower end", "value": value, "target": ">= 0.75", "met": value >= 0.75}

    entry = {"notebook": "04b_sentiment_control", "seed_runs": [
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
    line = "trained in 95 s (bfloat16); training loss over the last 25 steps 4.10\n"  # notebook 04b
    assert bench.precision("04b_sentiment_control", "none", executed(line)) == "bfloat16 (timed)"
    assert bench.precision("01_word_embeddings", "none", executed("nothing timed\n")) == "float32"  # the rule


def test_only_the_first_seed_writes_the_copy_the_book_reads(tmp_path) -> None:
    assert bench.copy_dir(tmp_path, None, None) == tmp_path
    assert bench.copy_dir(tmp_path, [42, 0, 7], 42) == tmp_path
    assert bench.copy_dir(tmp_path, [42, 0, 7], 7) == tmp_path / "seed-7"
