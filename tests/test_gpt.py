"""helpers.gpt: the same code as notebook 04's cells, and what that code promises (causal mask, cache, limits)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from helpers import gpt as hgpt
from helpers import lm

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_04 = ROOT / "notebooks" / "04_transformers_from_scratch.ipynb"
NOTEBOOK_04B = ROOT / "notebooks" / "04b_sentiment_control.ipynb"
# notebook 04's cells that define what helpers.gpt packages (found by cell id, never by text)
DEFINITION_CELLS = {
    "82ae19e9": ("attention",), "640af14c": ("MultiHeadAttention",), "d8a293bc": ("Block",),
    "e2b3c4d5": ("init_weights",), "576dc618": ("GPT",), "b5c6d7e8": ("autocast", "token_losses"),
    "010fe2e3": ("lr_factor", "param_groups"), "c6d7e8f9": ("train_step",), "d7e8f9a0": ("train_gpt",),
    "ce7f12df": ("filter_logits",), "e1f2a3b4": ("next_token",), "a1dd1f5e": ("generate",),
}
CONFIG_04, CONFIG_04B = "04c4a9d2", "4b000003"  # the size settings of notebooks 04 and 04b
GPT_KEYS = {"vocab_size", "n_unsup", "lm_unsup", "d_model", "n_layers", "n_heads", "context", "batch_size", "steps",
            "warmup", "lr"}  # what notebook 04 builds and trains its GPT with
V, D, LAYERS, HEADS, CONTEXT = 50, 16, 2, 2, 16  # a tiny model: every test here runs in well under a second


def _cells(path: Path) -> dict[str, str]:
    return {c["id"]: "".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]}


def _run_cells(path: Path, ids, namespace: dict) -> dict:
    cells = _cells(path)
    for cell_id in ids:
        assert cell_id in cells, f"{path.name} has no cell with id {cell_id!r}: was it split, merged or re-created?"
        exec(compile(cells[cell_id], f"{path.name}, cell {cell_id}", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine more threads wait on each other for every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nb() -> dict:
    """Notebook 04's definitions, from executing only its definition cells (with the imports they need)."""
    namespace = {"__name__": "notebook04", "math": math, "time": time, "np": np, "torch": torch, "nn": nn, "F": F,
                 "tqdm": tqdm, "lm": lm}
    _run_cells(NOTEBOOK_04, DEFINITION_CELLS, namespace)
    for names in DEFINITION_CELLS.values():
        for name in names:
            assert callable(namespace.get(name)), f"notebook 04 no longer defines {name}"
    return namespace


def _stream(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random token stream shaped like helpers.lm.token_stream's: tokens and conditions in {0, 1, 2}."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, n).astype(np.int64), rng.integers(0, 3, n).astype(np.int64)


def _pair(nb: dict, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Notebook 04's GPT and helpers.gpt.GPT, each built right after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    ours = nb["GPT"](V, CONTEXT, D, LAYERS, HEADS)
    torch.manual_seed(seed)
    return ours, hgpt.GPT(V, CONTEXT, D, LAYERS, HEADS)


def _model(seed: int = 0, spread: float = 0.3) -> hgpt.GPT:
    """A helpers GPT whose weights are pushed away from the tiny initial scale, so its logits are far from ties."""
    torch.manual_seed(seed)
    model = hgpt.GPT(V, CONTEXT, D, LAYERS, HEADS)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(spread * torch.randn_like(p))
    return model


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs"


# --- 1a. helpers.gpt computes exactly what notebook 04's cells compute ------------------------------------------------


def test_missing_cell_id_is_named(tmp_path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [{"id": "abc", "cell_type": "code", "source": ["x = 1"]}]}), encoding="utf-8")
    with pytest.raises(AssertionError, match="no cell with id 'zzz'"):
        _run_cells(path, ["abc", "zzz"], {})


def test_attention_equals_the_notebooks(nb) -> None:
    q, k, v = torch.randn(3, 2, 2, 5, 4).unbind(0)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    for mask in (None, causal):
        assert torch.equal(nb["attention"](q, k, v, mask), hgpt.attention(q, k, v, mask))


def test_gpt_weights_and_logits_equal_the_notebooks(nb) -> None:
    ours, theirs = _pair(nb, seed=3)
    _same_state(ours, theirs)
    ids = torch.randint(0, V, (2, 10))
    cond = torch.randint(0, 3, (2, 10))
    assert torch.equal(ours(ids, cond), theirs(ids, cond))
    caches = {name: [{} for _ in model.blocks] for name, model in (("ours", ours), ("theirs", theirs))}
    for part in (slice(0, 6), slice(6, 9), slice(9, 10)):  # no past, several new tokens, one new token
        a = ours(ids[:, part], cond[:, part], caches["ours"])
        b = theirs(ids[:, part], cond[:, part], caches["theirs"])
        assert torch.equal(a, b)


def test_train_gpt_equals_the_notebooks(nb) -> None:
    tokens, conds = _stream()
    val = lm.sequential_windows(tokens[:200], conds[:200], CONTEXT)
    runs = []
    for space, model in zip((nb, vars(hgpt)), _pair(nb, seed=1), strict=True):
        def validate(m, losses_of=space["token_losses"]):
            return float(losses_of(m, *val).mean())

        torch.manual_seed(1)
        losses, lrs, val_curve, seconds = space["train_gpt"](model, tokens, conds, steps=13, batch_size=4, lr=1e-2,
                                                             warmup=2, seed=5, validate=validate)
        assert seconds > 0
        runs.append((model, losses, lrs, val_curve))
    (ours, losses_a, lrs_a, curve_a), (theirs, losses_b, lrs_b, curve_b) = runs
    assert np.array_equal(losses_a, losses_b) and np.array_equal(lrs_a, lrs_b)
    assert curve_a == curve_b and [step for step, _ in curve_a] == [2, 4, 6, 8, 10, 12, 13]  # every steps // 6, the last
    _same_state(ours, theirs)
    assert not torch.equal(ours.tok.weight, _pair(nb, seed=1)[0].tok.weight)  # the steps moved the weights


def test_train_step_and_token_losses_equal_the_notebooks(nb) -> None:
    tokens, conds = _stream(seed=2)
    x, y, c = lm.sequential_windows(tokens, conds, CONTEXT)
    ours, theirs = _pair(nb, seed=2)
    assert np.array_equal(nb["token_losses"](ours, x, y, c, batch_size=8),
                          hgpt.token_losses(theirs, x, y, c, batch_size=8))
    losses = []
    for space, model in ((nb, ours), (vars(hgpt), theirs)):
        opt = torch.optim.AdamW(space["param_groups"](model, 0.1), lr=1e-2)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        xb, yb, cb = (torch.from_numpy(a[:4]) for a in (x, y, c))
        losses.append([space["train_step"](model, opt, sched, xb, yb, cb) for _ in range(3)])
    assert losses[0] == losses[1]
    _same_state(ours, theirs)


def test_sampling_equals_the_notebooks(nb) -> None:
    logits = torch.randn(4, V)
    settings = [{}, {"temperature": 0.7}, {"temperature": 1.3}, {"top_k": 5}, {"top_p": 0.9},
                {"temperature": 0.8, "top_k": 10, "top_p": 0.5}]
    for kw in settings:
        assert torch.equal(nb["filter_logits"](logits, **kw), hgpt.filter_logits(logits, **kw)), kw
        picks = [space["next_token"](logits, generator=torch.Generator().manual_seed(7), **kw)
                 for space in (nb, vars(hgpt))]
        assert torch.equal(*picks), kw
    assert torch.equal(nb["next_token"](logits, temperature=0), hgpt.next_token(logits, temperature=0))


def test_generate_equals_the_notebooks(nb) -> None:
    ours, theirs = _pair(nb, seed=4)
    prompts = torch.randint(0, V, (3, 4))
    for use_cache in (True, False):
        for sampling in ({"temperature": 0}, {"temperature": 0.9, "top_p": 0.9}, {"top_k": 8}):
            outs = [space["generate"](model, prompts, [0, 1, 2], 9, use_cache=use_cache,
                                      generator=torch.Generator().manual_seed(11), **sampling)
                    for space, model in ((nb, ours), (vars(hgpt), theirs))]
            assert torch.equal(*outs), (use_cache, sampling)


def test_schedule_and_parameter_groups_equal_the_notebooks(nb) -> None:
    for warmup, total in ((5, 50), (1, 3), (10, 10), (0, 7)):
        steps = range(total + 3)
        assert [nb["lr_factor"](s, warmup, total) for s in steps] == [hgpt.lr_factor(s, warmup, total) for s in steps]
    ours, theirs = _pair(nb)

    def partition(groups, model):
        names = {id(p): n for n, p in model.named_parameters()}
        return [(g["weight_decay"], [names[id(p)] for p in g["params"]]) for g in groups]

    assert partition(nb["param_groups"](ours, 0.1), ours) == partition(hgpt.param_groups(theirs, 0.1), theirs)


def test_init_output_bias_is_the_notebooks_per_condition_unigram() -> None:
    """Notebook 04's cell 76035fab sets bias[k] to the add-one unigram of condition k's tokens, in a loop."""
    tokens, conds = _stream(seed=6)
    model = hgpt.GPT(V, CONTEXT, D, LAYERS, HEADS)
    hgpt.init_output_bias(model, tokens, conds)
    for k in range(3):
        expected = torch.from_numpy(lm.unigram_logprobs(tokens[conds == k], np.arange(V), V)).float()
        assert torch.equal(model.bias[k].detach(), expected)
    source = _cells(NOTEBOOK_04)["76035fab"]
    assert "lm.unigram_logprobs(counts_of_k, np.arange(V), V)" in source and "train_conds == k" in source


# --- 1b. what helpers.gpt promises -----------------------------------------------------------------------------------


def test_causal_mask_never_looks_ahead() -> None:
    model = _model()
    ids = torch.randint(0, V, (2, CONTEXT))
    cond = torch.randint(0, 3, (2, CONTEXT))
    before = model(ids, cond)
    for t in (0, 5, CONTEXT - 1):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % V
        after = model(changed, cond)
        assert torch.allclose(after[:, :t], before[:, :t], atol=1e-6), f"a position before {t} saw token {t}"
        assert not torch.allclose(after[:, t], before[:, t])  # the token itself does matter


def test_kv_cache_gives_the_logits_and_greedy_text_of_recomputing() -> None:
    model = _model(seed=1)
    ids = torch.randint(0, V, (3, 12))
    cond = torch.tensor([0, 1, 2])[:, None].expand(-1, 12)
    full = model(ids, cond)
    caches = [{} for _ in model.blocks]
    parts = [model(ids[:, a:b], cond[:, a:b], caches) for a, b in ((0, 5), (5, 8), (8, 9), (9, 12))]
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)  # no past, several new tokens, one new token
    prompts = torch.randint(0, V, (3, 3))
    cached = hgpt.generate(model, prompts, [0, 1, 2], 10, use_cache=True, temperature=0)
    recomputed = hgpt.generate(model, prompts, [0, 1, 2], 10, use_cache=False, temperature=0)
    assert torch.equal(cached, recomputed) and cached.shape == (3, 13)
    assert torch.equal(cached[:, :3], prompts) and model.training  # the prompt is kept; the model is back in training


def test_generate_refuses_to_overflow_the_context_and_fills_it_exactly() -> None:
    model = _model()
    prompts = torch.randint(0, V, (2, 5))
    room = CONTEXT + 1 - prompts.shape[1]
    for use_cache in (True, False):
        out = hgpt.generate(model, prompts, [1, 0], room, use_cache=use_cache, temperature=0)
        assert out.shape == (2, CONTEXT + 1)
        with pytest.raises(ValueError, match=rf"n_new={room + 1}.*n_new <= {room}"):
            hgpt.generate(model, prompts, [1, 0], room + 1, use_cache=use_cache, temperature=0)


def test_next_token_samples_reproducibly_on_the_generators_device() -> None:
    logits = torch.randn(5, V)
    picks = [hgpt.next_token(logits, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(1))
             for _ in range(2)]
    assert torch.equal(*picks) and picks[0].shape == (5,)
    assert bool((logits.gather(1, picks[0][:, None]) >= logits.topk(5, dim=-1).values[:, -1:]).all())
    assert torch.equal(hgpt.next_token(logits, temperature=0, generator=torch.Generator()), logits.argmax(dim=-1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a generator on another device needs a GPU")
def test_next_token_refuses_a_generator_on_another_device() -> None:
    with pytest.raises(ValueError, match="pass torch.Generator"):
        hgpt.next_token(torch.randn(2, V, device="cuda"), generator=torch.Generator(device="cpu"))


def test_filter_logits_keeps_the_top_k_and_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(hgpt.filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(hgpt.filter_logits(logits, top_p=0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(hgpt.filter_logits(logits, top_p=0.81)).tolist() == [[False, False, False, True]]
    assert torch.allclose(hgpt.filter_logits(logits, temperature=2.0), logits / 2)


def test_parameter_count_follows_the_formula() -> None:
    for v, d, layers, heads, context in ((V, D, LAYERS, HEADS, CONTEXT), (37, 24, 1, 3, 9)):
        model = hgpt.GPT(v, context, d, layers, heads)
        formula = v * d + context * d + 3 * d + layers * (12 * d * d + 13 * d) + 2 * d + 3 * v
        assert sum(p.numel() for p in model.parameters()) == formula


def test_choose_precision_times_both_and_leaves_the_weights(monkeypatch) -> None:
    monkeypatch.delenv("DLNLP_PRECISION", raising=False)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    use_bf16, seconds = hgpt.choose_precision(model, torch.randint(0, V, (2, CONTEXT)), repeats=1)
    assert isinstance(use_bf16, bool) and set(seconds) == {"float32", "bfloat16"}
    assert all(s > 0 for s in seconds.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    monkeypatch.setenv("DLNLP_PRECISION", "bfloat16")  # the override still times, then obeys
    assert hgpt.choose_precision(model, torch.randint(0, V, (2, CONTEXT)), repeats=1)[0] is True


def test_init_output_bias_starts_each_condition_at_its_unigram() -> None:
    tokens, conds = _stream(seed=8)
    conds[tokens < 10] = 1  # condition 1 uses the low tokens far more often
    model = hgpt.GPT(V, CONTEXT, D, LAYERS, HEADS)
    hgpt.init_output_bias(model, tokens, conds)
    for k in range(3):
        counts = np.bincount(tokens[conds == k], minlength=V) + 1.0
        assert np.allclose(model.bias[k].detach().numpy(), np.log(counts / counts.sum()), atol=1e-6)
    ids = torch.randint(0, V, (1, 8))
    with torch.no_grad():
        probs = model(ids, torch.ones_like(ids)).softmax(dim=-1)[0]  # the untrained model is near that unigram
    unigram = model.bias[1].detach().softmax(dim=-1).expand_as(probs)
    assert float((probs / unigram).log().abs().max()) < 0.6  # within a factor 1.8 everywhere
    hgpt.init_output_bias(model, tokens, np.where(conds == 2, 0, conds))  # no token of condition 2, as with lm_unsup 0
    assert torch.allclose(model.bias[2].detach(), torch.full((V,), -math.log(V)))  # add-one on nothing: uniform


def test_train_gpt_follows_the_schedule_and_lowers_the_loss() -> None:
    tokens = np.tile(np.arange(10), 60).astype(np.int64)  # a stream a small model learns in a few steps
    conds = np.zeros_like(tokens)
    torch.manual_seed(0)
    model = hgpt.GPT(V, CONTEXT, D, 1, HEADS)
    losses, lrs, curve, _ = hgpt.train_gpt(model, tokens, conds, steps=12, batch_size=4, lr=1e-2, warmup=3, seed=0)
    assert np.allclose(lrs, [1e-2 * hgpt.lr_factor(s, 3, 12) for s in range(12)]) and curve == []
    assert losses[-3:].mean() < losses[:3].mean() - 0.5


# --- 1c. notebook 04b rebuilds notebook 04's GPT with notebook 04's settings ------------------------------------------


def _config(path: Path, cell_id: str, preset: str, monkeypatch) -> dict:
    monkeypatch.setenv("DLNLP_PRESET", preset)
    namespace = _run_cells(path, [cell_id], {})
    assert namespace["SIZE"] == preset
    return namespace["CONFIG"]


@pytest.mark.parametrize("preset", ["small", "full"])
def test_notebook_04b_trains_notebook_04s_gpt(preset, monkeypatch) -> None:
    config_04 = _config(NOTEBOOK_04, CONFIG_04, preset, monkeypatch)
    config_04b = _config(NOTEBOOK_04B, CONFIG_04B, preset, monkeypatch)
    assert GPT_KEYS <= set(config_04) and GPT_KEYS <= set(config_04b)
    shared = set(config_04) & set(config_04b)
    assert {k: config_04b[k] for k in shared} == {k: config_04[k] for k in shared}


def test_bad_arguments_get_errors_that_name_them() -> None:
    torch.manual_seed(0)
    model = hgpt.GPT(50, 16, 16, 1, 2)
    prompt = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="n_new"):
        hgpt.generate(model, prompt, [0, 1], -1)
    with pytest.raises(ValueError, match="one condition per row"):
        hgpt.generate(model, prompt, [0], 4)
    tokens = np.arange(100) % 50
    with pytest.raises(ValueError, match="steps"):
        hgpt.train_gpt(model, tokens, np.zeros(100, dtype=int), 0, 2, 1e-3, 1, 0)
    with pytest.raises(ValueError, match="tokens|conds"):
        hgpt.train_gpt(model, tokens, np.zeros(99, dtype=int), 2, 2, 1e-3, 1, 0)


def test_save_and_load_reuse_a_gpt_only_with_its_own_settings(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DLNLP_WORK_DIR", str(tmp_path))
    config = {"vocab_size": 50, "n_unsup": 0, "lm_unsup": 0, "d_model": 16, "n_layers": 1, "n_heads": 2,
              "context": 16, "batch_size": 2, "steps": 3, "warmup": 1, "lr": 1e-3}
    torch.manual_seed(0)
    model = hgpt.GPT(50, 16, 16, 1, 2)
    path = hgpt.save(model, "small", 42, config)
    assert path == hgpt.saved_path("small") and path.exists()
    again = hgpt.load("small", 42, config, "cpu")
    assert again is not None and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                        again.state_dict().values(), strict=True))
    assert hgpt.load("small", 7, config, "cpu") is None  # another seed: retrain
    assert hgpt.load("small", 42, {**config, "steps": 4}, "cpu") is None  # other settings: retrain
    assert "other settings or another seed" in capsys.readouterr().out
    assert hgpt.load("full", 42, config, "cpu") is None and "not found" in capsys.readouterr().out
    path.write_bytes(b"not an npz")
    assert hgpt.load("small", 42, config, "cpu") is None and "unreadable" in capsys.readouterr().out
