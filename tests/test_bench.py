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
        [("fine-tuned BERT, shared test subset", 0.86)]
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
    assert bench.RESOURCE_TARGETS[(NB04B, "small")] == (240, 1.4) and bench.FRAMEWORK[NB04B] == "torch"
    assert bench.RESOURCE_TARGETS[(NB03, "small")] == (240, 1.4)
    assert bench.RESOURCE_TARGETS[(NB03B, "small")] == (360, 1.4) and bench.FRAMEWORK[NB03B] == "torch"
    assert {gb for (_, preset), (_, gb) in bench.RESOURCE_TARGETS.items() if preset == "small"} == {1.4}  # issue #42
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


MAIN = ("01_word_embeddings", "02_lstm_sentiment", NB03, NB04)
ONE_CPU = {"usable_cpus": 1, "cpu_limit": "1 usable of 2 cores (affinity 2, cgroup quota 1)", "forced_precision": "float32"}


def test_machine_records_the_cpu_budget_and_a_forced_precision(monkeypatch) -> None:
    from helpers.runtime import CpuBudget

    monkeypatch.setattr(bench, "cpu_budget", lambda: CpuBudget(2, 2, 1.0, None, 1))
    monkeypatch.setenv("DLNLP_PRECISION", "float32")
    info = bench.machine()
    assert info["usable_cpus"] == 1 and info["cpu_limit"] == "1 usable of 2 cores (affinity 2, cgroup quota 1)"
    assert info["forced_precision"] == "float32"
    monkeypatch.setenv("DLNLP_PRECISION", "auto")
    assert bench.machine()["forced_precision"] is None


def test_a_cpu_limit_gets_its_own_section_and_heading() -> None:
    old = _report("small", "AMD EPYC", "none", {NB03: 150.0})  # recorded before usable_cpus existed
    assert bench.section_key("small", old["machine"]) == "small | 2 x AMD EPYC | GPU: none"
    assert bench.section_key("small", {**old["machine"], "usable_cpus": 2}) == "small | 2 x AMD EPYC | GPU: none"
    limited = _report("small", "AMD EPYC", "none", {NB03: 290.0})
    limited["machine"].update(ONE_CPU)
    assert bench.section_key("small", limited["machine"]) == "small | 1 of 2 x AMD EPYC | GPU: none"
    store = bench.merge(bench.merge({}, old), limited)
    assert len(store["sections"]) == 2
    md = bench.render(store)
    assert "## Small preset: 2 × AMD EPYC, GPU: none" in md
    assert "## Small preset: 1 usable CPU of 2 × AMD EPYC (cgroup quota 1), GPU: none" in md
    assert md.count("float32 forced (DLNLP_PRECISION)") == 1  # only the run that forced it
    assert "Run on 2030-01-02; 23.5 GB RAM; Python 3.11.7; torch 2.13.0." in md  # the old section's line is unchanged
    assert "Against" not in md and "time ratio" not in md  # no baseline, no ratios


def _baseline_file(tmp_path: Path, seconds: dict[str, float], preset: str = "small", **machine) -> Path:
    report = _report(preset, "AMD EPYC", "none", seconds) | {"date": "2030-01-01 09:00"}
    report["machine"].update(machine)
    path = tmp_path / f"bench-{len(list(tmp_path.iterdir()))}.json"  # a new file per call
    path.write_text(__import__("json").dumps(report), encoding="utf-8")
    return path


def test_baseline_ratios_the_series_row_and_their_checks(tmp_path) -> None:
    path = _baseline_file(tmp_path, {MAIN[0]: 80.0, MAIN[1]: 170.0, NB03: 570.0, NB04: 120.0, "99_gone": 10.0})
    report = _report("small", "AMD EPYC", "none", {MAIN[0]: 90.0, MAIN[1]: 140.0, NB03: 157.0, NB03B: 356.0, NB04: 82.0})
    report["machine"].update(usable_cpus=2)
    report["baseline"] = bench.load_baseline(path, "ff00e16", "small", report["machine"])
    assert report["baseline"]["notebooks"][NB03] == {"seconds": 570.0, "peak_gb": 1.2, "returncode": 0}
    store = bench.merge({}, report)
    md = bench.render(store)
    assert "Against ff00e16 (same machine; ff00e16 run 2030-01-01, this run 2030-01-02):" in md
    assert "| notebook | ff00e16 (s) | now (s) | ratio | ff00e16 peak (GB) | now peak (GB) |" in md
    assert "| 01_word_embeddings | 80 | 90 | 1.12 | 1.20 | 1.20 |" in md
    assert "| 03_bert_classification | 570 | 157 | 0.28 | 1.20 | 1.20 |" in md
    assert "| 01–04 in order | 940 | 469 | 0.50 | – | – |" in md
    assert "| 03b_label_budget | 356 |" not in md.split("Against")[1].split("| notebook | measure")[0]  # not in both
    assert "| 03_bert_classification | time ratio to ff00e16 | 0.2754 | <= 0.33 | met |" in md
    assert "| 01–04 in order | time ratio to ff00e16 | 0.4989 | <= 0.45 | **missed** |" in md
    store = bench.merge(store, _report("small", "AMD EPYC", "none", {NB03: 180.0}))  # a run without --baseline keeps it
    assert store["sections"]["small | 2 x AMD EPYC | GPU: none"]["baseline"]["name"] == "ff00e16"
    assert "| 03_bert_classification | 570 | 180 | 0.32 |" in bench.render(store)
    without_04 = bench.merge({}, {**report, "notebooks": report["notebooks"][:3]})
    md = bench.render(without_04)
    assert "| 01–04 in order" not in md and "| 03_bert_classification | time ratio to ff00e16 |" in md


def test_baseline_from_elsewhere_is_refused(tmp_path) -> None:
    import pytest

    here = {**_report("small", "AMD EPYC", "none", {})["machine"], "usable_cpus": 1}
    cases = [(_baseline_file(tmp_path, {NB03: 500.0}, cpu="Intel Xeon"), "ran on 2 × Intel Xeon"),
             (_baseline_file(tmp_path, {NB03: 500.0}, cpu_count=4), "ran on 4 × AMD EPYC"),
             (_baseline_file(tmp_path, {NB03: 500.0}, preset="full"), "--preset small"),
             (_baseline_file(tmp_path, {NB03: 500.0}, usable_cpus=2), "same CPU limit"),
             (_baseline_file(tmp_path, {}), "no notebooks"),
             (tmp_path / "missing.json", "cannot be read as JSON")]
    for path, why in cases:
        with pytest.raises(SystemExit, match=f"--baseline {path}: .*{why}"):
            bench.load_baseline(path, "ff00e16", "small", here)
    (tmp_path / "garbled.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SystemExit, match="cannot be read as JSON.*build/bench-small.json"):
        bench.load_baseline(tmp_path / "garbled.json", "ff00e16", "small", here)
    assert bench.load_baseline(_baseline_file(tmp_path, {NB03: 500.0}), "b", "small", here)["name"] == "b"  # none recorded


RUN5_TAIL = """XFAIL notebooks/03b_label_budget.ipynb::Cell 14 - Previous cell timed out, expected cell to fail
FAILED notebooks/03b_label_budget.ipynb::Cell 7 - \x1b[91mNotebook cell execution failed\x1b[0m
======= 1 failed, 824 passed, 2 skipped, 7 xfailed in 678.87s (0:11:18) ========
exit 1 after 761 s
"""
RUN4_TAIL = """notebooks/04b_sentiment_control.ipynb ......................             [100%]

=========================== short test summary info ============================
SKIPPED [1] tests/test_gpt.py:265: a generator on another device needs a GPU
================== 832 passed, 2 skipped in 674.80s (0:11:14) ==================
exit 0 after 764 s
"""


def _log(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ci.log"
    path.write_text("============================= test session starts ==============================\n" + text,
                    encoding="utf-8")
    return path


def test_ci_log_gives_counts_seconds_and_exit(tmp_path) -> None:
    import pytest

    zero = dict.fromkeys(bench.CI_COUNTS, 0)
    assert bench.parse_ci_log(_log(tmp_path, RUN5_TAIL)) == {
        "counts": zero | {"failed": 1, "passed": 824, "skipped": 2, "xfailed": 7}, "tests_seconds": 678.87,
        "total_seconds": 761.0, "exit": 1}
    assert bench.parse_ci_log(_log(tmp_path, RUN4_TAIL)) == {
        "counts": zero | {"passed": 832, "skipped": 2}, "tests_seconds": 674.8, "total_seconds": 764.0, "exit": 0}
    assert bench.parse_ci_log(_log(tmp_path, RUN4_TAIL.replace("832 passed", "830 passed, 1 error")))["counts"]["errors"] == 1
    with pytest.raises(SystemExit, match="ci.log: no pytest summary line.*python3 run.py test"):
        bench.parse_ci_log(_log(tmp_path, "exit 2 after 30 s\n"))
    with pytest.raises(SystemExit, match="ci.log: no final line such as 'exit 0 after 764 s'"):
        bench.parse_ci_log(_log(tmp_path, RUN4_TAIL.replace("exit 0 after 764 s", "")))
    with pytest.raises(SystemExit, match="cannot be read"):
        bench.parse_ci_log(tmp_path / "nothing.log")


def test_ci_is_recorded_and_rendered_last(tmp_path, monkeypatch) -> None:
    import json
    import sys

    def no_notebooks(*_args, **_kwargs):
        raise AssertionError("--record-ci ran something")

    monkeypatch.setattr(bench, "run_notebook", no_notebooks)
    monkeypatch.setattr(bench, "probe", no_notebooks)
    monkeypatch.setattr(bench, "write_ci", lambda ci: bench.update_docs(lambda store: {**store, "ci": ci}, tmp_path))
    bench.write_docs(_report("small", "AMD EPYC", "none", {NB03: 150.0}), tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench.py", "--record-ci", str(_log(tmp_path, RUN4_TAIL)), "--ci-note", "Clean clone."])
    assert bench.main() == 0
    store = json.loads((tmp_path / "benchmarks.json").read_text(encoding="utf-8"))
    assert list(store) == ["sections", "ci"] and store["ci"]["note"] == "Clean clone."
    assert set(store["ci"]["machine"]) >= {"cpu", "cpu_count", "usable_cpus"}
    md = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert md == bench.render(store) and "| 03_bert_classification | 150 |" in md
    ci = {**store["ci"], "date": "2026-12-07", "machine": {"cpu": "AMD EPYC", "cpu_count": 2, "usable_cpus": 2}}
    assert bench.ci_lines(ci) == ["## CI: the README's test command", "",
                                  "2026-12-07, 2 × AMD EPYC: 832 passed, 2 skipped; tests 675 s, 764 s in all (exit 0). "
                                  "Clean clone.", ""]
    failed = {**ci, **bench.parse_ci_log(_log(tmp_path, RUN5_TAIL)), "note": None, "machine": {**ci["machine"], **ONE_CPU}}
    assert bench.ci_lines(failed)[2] == ("2026-12-07, 1 usable CPU of 2 × AMD EPYC (cgroup quota 1): 824 passed, 1 failed, "
                                         "2 skipped, 7 xfailed; tests 679 s, 761 s in all (exit 1).")
