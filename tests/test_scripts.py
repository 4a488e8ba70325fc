"""The experiment scripts stay in step with the notebooks whose settings they mirror."""

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
NOTEBOOK_03 = ROOT / "notebooks" / "03_bert_classification.ipynb"
CONFIG_CELL = "b6041f31"  # notebook 03's size setting: SIZE and CONFIG


def _config_of(notebook: Path, cell_id: str, preset: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A notebook's CONFIG under ``preset``, from executing only its CONFIG cell (found by id)."""
    cells = {c["id"]: "".join(c["source"]) for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]}
    assert cell_id in cells, f"{notebook.name} has no cell {cell_id}: update the id here"
    monkeypatch.setenv("DLNLP_PRESET", preset)
    namespace: dict = {}
    exec(compile(cells[cell_id], f"{notebook.name}, cell {cell_id}", "exec"), namespace)  # noqa: S102
    assert namespace["SIZE"] == preset
    return namespace["CONFIG"]


def _notebook_config(preset: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Notebook 03's CONFIG under ``preset``."""
    return _config_of(NOTEBOOK_03, CONFIG_CELL, preset, monkeypatch)


# what helpers.bert.fine_tune and predict read, and what budget_epochs.py reads itself (data, length, validation)
SHARED_03 = {"lr", "head_lr", "batch_size", "pad_multiple", "n_train", "max_length", "head", "n_val"}


@pytest.mark.parametrize("preset", ["small", "full"])
def test_budget_epochs_settings_are_the_notebooks(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _notebook_config(preset, monkeypatch)
    mirrored = budget_epochs.CONFIGS[preset]
    assert SHARED_03 <= set(config), f"notebook 03's CONFIG lacks {sorted(SHARED_03 - set(config))}"
    assert set(mirrored) == SHARED_03, "budget_epochs.CONFIGS mirrors exactly the settings the script reads"
    assert mirrored == {key: config[key] for key in mirrored}, "budget_epochs.CONFIGS and notebook 03's CONFIG differ"


@pytest.mark.parametrize("preset", ["small", "full"])
def test_notebook_03b_uses_notebook_03s_settings(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 03b's CONFIG repeats notebook 03's settings (the same values) before its own, but for the layers it
    trains (fewer on the small preset), and it knows how many notebook 03 trains (to find notebook 03's saved pass)."""
    config_03 = _notebook_config(preset, monkeypatch)
    config_03b = _config_of(ROOT / "notebooks" / "03b_label_budget.ipynb", "3b000003", preset, monkeypatch)
    shared = (set(config_03) & set(config_03b)) - {"train_layers"}
    assert SHARED_03 | {"epochs"} <= shared
    assert {key: config_03b[key] for key in shared} == {key: config_03[key] for key in shared}
    assert config_03b["train_layers_03"] == config_03["train_layers"]
    assert config_03b["train_layers"] <= config_03["train_layers"]


def test_budget_epochs_parses_budgets() -> None:
    assert budget_epochs.parse_budget("256:2,4,6") == (256, [2, 4, 6])
    assert budget_epochs.parse_budget("1024:3") == (1024, [3])
    with pytest.raises(argparse.ArgumentTypeError, match="N:E1,E2"):
        budget_epochs.parse_budget("256")
    with pytest.raises(argparse.ArgumentTypeError, match="N:E1,E2"):
        budget_epochs.parse_budget("256:two")


# --- notebook 04's GPT scripts: gpt_side_by_side.py and gpt_levers.py -------------------------------------------------

import sys  # noqa: E402

NOTEBOOK_04 = ROOT / "notebooks" / "04_transformers_from_scratch.ipynb"
CONFIG_CELL_04 = "04c4a9d2"  # notebook 04's size setting: SIZE and CONFIG
_gpt_spec = importlib.util.spec_from_file_location("gpt_side_by_side",
                                                   ROOT / "scripts" / "experiments" / "gpt_side_by_side.py")
gpt_side_by_side = importlib.util.module_from_spec(_gpt_spec)
sys.modules["gpt_side_by_side"] = gpt_side_by_side  # its dataclass looks its module up there; gpt_levers imports it
_gpt_spec.loader.exec_module(gpt_side_by_side)


def _notebook_04_config(preset: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Notebook 04's CONFIG under ``preset``."""
    return _config_of(NOTEBOOK_04, CONFIG_CELL_04, preset, monkeypatch)


@pytest.mark.parametrize("preset", ["small", "full"])
def test_gpt_scripts_settings_are_notebook_04s(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _notebook_04_config(preset, monkeypatch)
    assert gpt_side_by_side.CONFIGS[preset] == config  # every setting: data, tokenizer, model, training, evaluation
    if preset == "small":
        assert config == {"vocab_size": 1536, "n_unsup": 10_000, "lm_unsup": 0, "d_model": 128, "n_layers": 2,
                          "n_heads": 2, "context": 64, "batch_size": 16, "steps": 2000, "warmup": 50, "lr": 5e-3,
                          "val_tokens": 64_000, "eval_stride": 32}


def test_no_experiment_reads_code_out_of_a_notebook() -> None:
    for script in sorted((ROOT / "scripts" / "experiments").glob("*.py")):
        source = script.read_text(encoding="utf-8")
        assert "exec(" not in source and ".ipynb" not in source, f"{script.name} cuts code out of a notebook"
    for name in ("gpt_side_by_side.py", "gpt_levers.py"):
        source = (ROOT / "scripts" / "experiments" / name).read_text(encoding="utf-8")
        assert "helpers.gpt" in source or "from helpers import gpt" in source, name


def test_gpt_side_by_side_runs_end_to_end_on_a_tiny_imdb(isolated_data_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole script on the tests' tiny IMDB with a tiny GPT: the JSON that bench.py reads and renders."""
    import torch
    from conftest import make_archive

    import helpers.data as data

    (isolated_data_dir / data.ARCHIVE_NAME).write_bytes(make_archive())
    tiny = {"vocab_size": 300, "n_unsup": 2, "lm_unsup": 1, "d_model": 16, "n_layers": 1, "n_heads": 2, "context": 8,
            "batch_size": 4, "steps": 3, "warmup": 1, "lr": 1e-2, "val_tokens": None, "eval_stride": 4}
    monkeypatch.setitem(gpt_side_by_side.CONFIGS, "small", tiny)
    monkeypatch.setenv("DLNLP_SEED", "42")  # the script sets it per seed; restored after the test
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and safe on a busy machine
    try:
        out = tmp_path / "side.json"
        assert gpt_side_by_side.main(["--seeds", "3", "--preset", "small", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["preset"] == "small" and [r["seed"] for r in result["runs"]] == [3]
    run = result["runs"][0]
    assert run["notebook_gpt"]["steps"] == 3 and run["nanogpt_recipe"]["steps"] >= 20
    for model in ("notebook_gpt", "nanogpt_recipe"):
        assert run[model]["perplexity"] > 1 and run[model]["tokens_per_second"] > 0 and run[model]["seconds"] >= 0
    assert run["trigram_perplexity"] > 1 and run["bigram_perplexity"] > 1
    ratio = run["notebook_gpt"]["perplexity"] / run["nanogpt_recipe"]["perplexity"] - 1
    assert abs(run["notebook_vs_recipe"] - ratio) < 1e-3
    bench_spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "tools" / "bench.py")
    bench = importlib.util.module_from_spec(bench_spec)
    bench_spec.loader.exec_module(bench)
    assert "| 3 | " in "\n".join(bench.side_by_side_lines({"side_by_side": result}))
    assert bench._side_by_side_worst({"side_by_side": result}) == -run["notebook_vs_recipe"]


def test_gpt_side_by_side_builds_notebook_04s_starting_model() -> None:
    """The GPT the script trains is notebook 04's: seeded weights, each condition's bias at its unigram."""
    import numpy as np
    import torch

    from helpers import gpt as hgpt
    from helpers import lm

    rng = np.random.default_rng(0)
    tokens, conds = rng.integers(0, 50, 400).astype(np.int32), rng.integers(0, 3, 400).astype(np.int8)
    config = {"context": 16, "d_model": 16, "n_layers": 1, "n_heads": 2}
    setup = gpt_side_by_side.Setup(preset="small", seed=5, config=config, vocab=50, device=torch.device("cpu"),
                                   train_tokens=tokens, train_conds=conds, eval_tokens=tokens, eval_conds=conds,
                                   control_ids=[2, 3, 4])
    model = gpt_side_by_side.notebook_gpt(setup)
    torch.manual_seed(5)
    expected = hgpt.GPT(50, 16, 16, 1, 2)
    hgpt.init_output_bias(expected, tokens, conds)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), expected.state_dict().values(),
                                                  strict=True))
    assert torch.equal(model.bias[1].detach(),
                       torch.from_numpy(lm.unigram_logprobs(tokens[conds == 1], np.arange(50), 50)).float())


def test_gpt_levers_times_notebook_04s_training_step_on_a_tiny_imdb(isolated_data_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A lever's child process, run in this one: notebook 04's data and GPT, timed steps, tokens per second."""
    import torch
    from conftest import make_archive

    import helpers.data as data

    gpt_levers = _experiment("gpt_levers")
    (isolated_data_dir / data.ARCHIVE_NAME).write_bytes(make_archive())
    tiny = {"vocab_size": 300, "n_unsup": 2, "lm_unsup": 0, "d_model": 16, "n_layers": 1, "n_heads": 2, "context": 8,
            "batch_size": 4, "steps": 3, "warmup": 1, "lr": 1e-2, "val_tokens": None, "eval_stride": 4}
    monkeypatch.setitem(gpt_side_by_side.CONFIGS, "small", tiny)  # the child imports the module registered above
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "4")  # the child sets it if unset; keep the test's env
    assert set(gpt_levers.LEVERS) >= {"notebook (float32, oneDNN cache 4)", "fused AdamW", "bfloat16 autocast"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for options in ({}, {"fused": True}, {"bf16": True}, {"batch": 6}):
            result = gpt_levers.child(options, 2, "small")
            assert result["tokens_per_second"] > 0 and result["warm_up_seconds"] > 0, options
    finally:
        torch.set_num_threads(threads)


def _experiment(name: str):
    """scripts/experiments/<name>.py as a module (its folder on sys.path: some import budget_epochs beside them)."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts" / "experiments"))
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", ROOT / "scripts" / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("preset", ["small", "full"])
def test_head_lr_trains_for_the_notebooks_epochs(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _experiment("head_lr").EPOCHS[preset] == _notebook_config(preset, monkeypatch)["epochs"]


def test_head_lr_parses_rates() -> None:
    head_lr = _experiment("head_lr")
    assert head_lr.parse_rates("1.5e-4,2e-3") == [1.5e-4, 2e-3]
    for bad in ("fast", "0,1e-3", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="--head-lrs"):
            head_lr.parse_rates(bad)


def test_top_layers_script_parses_variants() -> None:
    script = _experiment("top_layers")
    assert script.parse_variants("2:cls") == [(2, "cls")]
    assert script.parse_variants("1:cls,2:mean") == [(1, "cls"), (2, "mean")]
    for bad in ("x:cls", "2:foo", "2", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="--variants"):
            script.parse_variants(bad)


@pytest.mark.parametrize("preset", ["small", "full"])
def test_recurrent_plan_settings_are_notebook_02s(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_of(ROOT / "notebooks" / "02_lstm_sentiment.ipynb", "edfbe9ac", preset, monkeypatch)
    mirrored = _experiment("recurrent_plan").CONFIGS[preset]
    assert mirrored == {key: config[key] for key in mirrored}


def test_recurrent_plan_parses_plans() -> None:
    plan = _experiment("recurrent_plan")
    assert plan.parse_plan("200:128") == (200, 128)
    for bad in ("200", "200:0", "long:128"):
        with pytest.raises(argparse.ArgumentTypeError, match="--plan"):
            plan.parse_plan(bad)


def test_tfidf_c_parses_values_and_builds_notebook_02s_baseline() -> None:
    tfidf_c = _experiment("tfidf_c")
    assert tfidf_c.parse_cs("1,4,16") == [1.0, 4.0, 16.0]
    for bad in ("", "0,1", "big"):
        with pytest.raises(argparse.ArgumentTypeError, match="--cs"):
            tfidf_c.parse_cs(bad)
    model = tfidf_c.baseline(8.0).fit(["a fine film", "a dull film"] * 4, [1, 0] * 4)
    assert model[-1].C == 8.0 and list(model.predict(["fine", "dull"])) == [1, 0]
