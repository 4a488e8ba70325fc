"""Notebook 04's GPT against nanoGPT's CPU recipe, trained on the same token stream for the same seconds.

Usage: ``python scripts/experiments/gpt_side_by_side.py [--seeds 42 0 7] [--steps N] [--preset small] [--out results.json]``.

The notebook's GPT, its training loop and its evaluation come from ``helpers.gpt`` (tests/test_gpt.py keeps them equal to
notebook 04's cells), its data from ``helpers.load_imdb`` and ``helpers.lm`` as in the notebook, and its settings from
``CONFIGS`` below, which mirror notebook 04's ``CONFIG`` (its cell ``04c4a9d2``; tests/test_scripts.py checks that they
agree). It trains in float32, as the recipe does. The other model follows the recipe in nanoGPT's README for a CPU
(4 layers, 4 heads, width 128, context 64, batch 12, float32, AdamW at 1e-3 with betas (0.9, 0.99), 100 warm-up steps,
cosine decay to 1e-4, weight decay 0.1, no dropout, no biases, tied embeddings); it is written here, not copied. It
trains until it has used the seconds the notebook's GPT took. Both are scored on the same validation targets with the
same sliding windows; the trigram counted on the same stream is printed beside them. The notebook's GPT sees each
review's sentiment condition and nanoGPT's does not (a few per cent of a bigram's perplexity, notebook 04 measures).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "4")  # as notebook 04's imports cell, before torch starts
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # helpers/, when run from a checkout without installing it

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import helpers  # noqa: E402
from helpers import gpt as hgpt  # noqa: E402
from helpers import lm  # noqa: E402

# Notebook 04's CONFIG, per preset: its data, tokenizer, GPT, training and evaluation settings.
CONFIGS = {
    "small": {"vocab_size": 1536, "n_unsup": 10_000, "lm_unsup": 0, "d_model": 128, "n_layers": 2, "n_heads": 2,
              "context": 64, "batch_size": 16, "steps": 2000, "warmup": 50, "lr": 5e-3, "val_tokens": 64_000,
              "eval_stride": 32},
    "full": {"vocab_size": 8192, "n_unsup": None, "lm_unsup": None, "d_model": 384, "n_layers": 6, "n_heads": 6,
             "context": 256, "batch_size": 64, "steps": 20_000, "warmup": 500, "lr": 1e-3, "val_tokens": None,
             "eval_stride": 128},
}
RECIPE_BATCH = 12


@dataclass
class Setup:
    """Notebook 04's data for one preset and seed: the training stream, the validation targets it scores."""

    preset: str
    seed: int
    config: dict
    vocab: int
    device: torch.device
    train_tokens: np.ndarray
    train_conds: np.ndarray
    eval_tokens: np.ndarray
    eval_conds: np.ndarray
    control_ids: list[int]


def prepare(preset: str, seed: int, steps: int | None = None) -> Setup:
    """Notebook 04's sections 1 and 3 up to training: data, tokenizer, training stream and validation targets."""
    config = dict(CONFIGS[preset], **({"steps": steps} if steps else {}))
    seed = helpers.seed_everything(seed)  # $DLNLP_SEED wins, as in the notebook
    imdb = helpers.load_imdb(n_unsup=config["n_unsup"], seed=seed)
    name = f"imdb-bpe-{config['vocab_size']}-{preset}"  # the notebook's tokenizer, read from its cache
    tokenizer = lm.train_bpe(imdb.train.texts + imdb.unsup, config["vocab_size"], name)
    lm_unsup = imdb.unsup if config["lm_unsup"] is None else imdb.unsup[: config["lm_unsup"]]
    train_docs = lm.encode(tokenizer, imdb.train.texts) + lm.encode(tokenizer, lm_unsup)
    train_labels = np.concatenate([imdb.train.labels, -np.ones(len(lm_unsup), dtype=int)])
    train_tokens, train_conds = lm.token_stream(train_docs, train_labels, tokenizer)
    val_tokens, val_conds = lm.token_stream(lm.encode(tokenizer, imdb.val.texts), imdb.val.labels, tokenizer)
    n_eval = len(val_tokens) - 1 if config["val_tokens"] is None else config["val_tokens"]
    return Setup(preset=preset, seed=seed, config=config, vocab=tokenizer.get_vocab_size(),
                 device=torch.device("cuda" if torch.cuda.is_available() else "cpu"),
                 train_tokens=train_tokens, train_conds=train_conds,
                 eval_tokens=val_tokens[: n_eval + 1], eval_conds=val_conds[: n_eval + 1],
                 control_ids=[tokenizer.token_to_id(t) for t in (lm.POS, lm.NEG, lm.UNL)])


def notebook_gpt(setup: Setup) -> hgpt.GPT:
    """Notebook 04's GPT as it starts training: seeded weights, each condition's output bias at its unigram."""
    config = setup.config
    torch.manual_seed(setup.seed)
    model = hgpt.GPT(setup.vocab, config["context"], config["d_model"], config["n_layers"], config["n_heads"])
    model = model.to(setup.device)
    hgpt.init_output_bias(model, setup.train_tokens, setup.train_conds)
    return model


def train_notebook_gpt(setup: Setup) -> tuple[hgpt.GPT, float]:
    """Notebook 04's training run (float32, no validation passes); return the model and its training seconds."""
    model, config = notebook_gpt(setup), setup.config
    torch.manual_seed(setup.seed)
    *_, seconds = hgpt.train_gpt(model, setup.train_tokens, setup.train_conds, config["steps"], config["batch_size"],
                                 config["lr"], config["warmup"], setup.seed, bf16=False)
    return model, seconds


def recipe_model(vocab: int, context: int, d: int = 128, layers: int = 4, heads: int = 4) -> nn.Module:
    """A GPT-2-shaped model as nanoGPT's CPU recipe sizes it: pre-LN, no biases, GELU MLP, tied output layer."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
            self.qkv, self.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
            self.up, self.down = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            x = x + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, d))
            return x + self.down(F.gelu(self.up(self.ln2(x))))

    class Recipe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
            self.blocks = nn.Sequential(*[Block() for _ in range(layers)])
            self.ln_f = nn.LayerNorm(d, bias=False)
            for name, p in self.named_parameters():
                if p.dim() >= 2:
                    residual = name.endswith(("proj.weight", "down.weight"))
                    nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers) if residual else 0.02)

        def forward(self, ids, cond=None):  # cond ignored: nanoGPT's model is unconditional
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
            return self.ln_f(self.blocks(x)) @ self.tok.weight.T

    return Recipe()


def train_recipe(setup: Setup, seconds: float) -> tuple[nn.Module, int, float]:
    """Train the recipe model on the notebook's stream for ``seconds``; return it, its steps and its seconds."""
    V, context = setup.vocab, setup.config["context"]
    torch.manual_seed(setup.seed)
    model = recipe_model(V, context).to(setup.device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(setup.seed)

    def step(i: int, total: int) -> None:
        warm = 100
        frac = min(1.0, max(0.0, (i - warm) / max(1, total - warm)))
        lr = 1e-3 * (i + 1) / warm if i < warm else 1e-4 + 0.5 * (1 + math.cos(math.pi * frac)) * (1e-3 - 1e-4)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y, _ = (torch.from_numpy(a).to(setup.device) for a in
                   lm.random_windows(setup.train_tokens, setup.train_conds, context, RECIPE_BATCH, rng))
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    probe_start = time.perf_counter()  # a short run sets the schedule's length: the steps that fit in the seconds
    for i in range(20):
        step(i, 10**9)
    total = max(21, int(seconds / ((time.perf_counter() - probe_start) / 20)))
    i = 20
    while i < total and (time.perf_counter() - probe_start) < seconds:
        step(i, total)
        i += 1
    return model, i, time.perf_counter() - probe_start


def sliding_scores(setup: Setup, models: dict[str, nn.Module]) -> dict[str, float]:
    """Perplexity of each model (and of the bigram and trigram) on notebook 04's validation targets, sliding windows."""
    V, context, stride = setup.vocab, setup.config["context"], setup.config["eval_stride"]
    tokens = setup.eval_tokens
    x, y, c, new = lm.sliding_windows(tokens, setup.eval_conds, context, stride)
    at = stride * np.arange(len(x))[:, None] + np.arange(1, context + 1)  # stream index of each target
    t = at[new]
    keep = (t >= 2) & ~np.isin(tokens[t], setup.control_ids)  # control tokens are not scored
    t = t[keep]
    train = setup.train_tokens
    out = {"bigram": lm.perplexity(lm.bigram_logprobs(train, tokens[t - 1], tokens[t], V)),
           "trigram": lm.perplexity(lm.trigram_logprobs(train, tokens[t - 2], tokens[t - 1], tokens[t], V))}
    for name, model in models.items():
        out[name] = lm.perplexity(-hgpt.token_losses(model, x, y, c)[new][keep])
    return out


def side_by_side(setup: Setup) -> dict:
    """One seed's run: the notebook's GPT, then the recipe for the same seconds, both scored; a JSON-ready row."""
    steps, batch, context = setup.config["steps"], setup.config["batch_size"], setup.config["context"]
    gpt, gpt_seconds = train_notebook_gpt(setup)
    recipe, recipe_steps, recipe_seconds = train_recipe(setup, gpt_seconds)
    ppl = sliding_scores(setup, {"notebook GPT": gpt, "nanoGPT recipe": recipe})
    return {"seed": setup.seed, "notebook_gpt": {"steps": steps, "seconds": round(gpt_seconds, 1),
                                                 "tokens_per_second": round(steps * batch * context / gpt_seconds),
                                                 "perplexity": round(ppl["notebook GPT"], 2)},
            "nanogpt_recipe": {"steps": recipe_steps, "seconds": round(recipe_seconds, 1),
                               "tokens_per_second": round(recipe_steps * RECIPE_BATCH * context / recipe_seconds),
                               "perplexity": round(ppl["nanoGPT recipe"], 2)},
            "bigram_perplexity": round(ppl["bigram"], 2), "trigram_perplexity": round(ppl["trigram"], 2),
            "notebook_vs_recipe": round(ppl["notebook GPT"] / ppl["nanoGPT recipe"] - 1, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 7])
    parser.add_argument("--steps", type=int, help="the notebook GPT's steps (default: the notebook's preset)")
    parser.add_argument("--preset", choices=sorted(CONFIGS), default=None, help="default: $DLNLP_PRESET, else small")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    preset = args.preset or helpers.preset()
    rows = []
    for seed in args.seeds:
        os.environ["DLNLP_SEED"] = str(seed)  # the seed of everything the notebook seeds
        row = side_by_side(prepare(preset, seed, args.steps))
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"preset": preset, "runs": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
