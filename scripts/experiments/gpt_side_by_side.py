"""Notebook 04's GPT against nanoGPT's CPU recipe, trained on the same token stream for the same seconds.

Usage: ``python scripts/experiments/gpt_side_by_side.py [--seeds 42 0 7] [--steps N] [--out results.json]``.

The notebook's own cells (data, tokenizer, model, optimizer, schedule) are executed from
``notebooks/04_transformers_from_scratch.ipynb``, so the comparison follows the notebook as it is. The other model
follows the recipe in nanoGPT's README for a CPU (4 layers, 4 heads, width 128, context 64, batch 12, float32, AdamW at
1e-3 with betas (0.9, 0.99), 100 warm-up steps, cosine decay to 1e-4, weight decay 0.1, no dropout, no biases, tied
embeddings); it is written here, not copied. It trains until it has used the seconds the notebook's GPT took. Both
are scored on the same validation targets with the same sliding windows; the trigram counted on the same stream is
printed beside them. The notebook's GPT sees each review's sentiment condition and nanoGPT's does not (the notebook
measures what that condition is worth: a few per cent of a bigram's perplexity).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "04_transformers_from_scratch.ipynb"


def notebook_namespace(steps: int | None) -> dict:
    """Run notebook 04's cells up to its training function (the training run itself excluded); return their globals."""
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    start = next(i for i, src in enumerate(cells) if "SIZE = helpers.preset()" in src)
    end = next(i for i, src in enumerate(cells) if "def train_gpt(" in src)
    ns: dict = {"__name__": "__notebook04__"}
    for src in cells[start:end]:
        if src.lstrip().startswith(("%", "!")):
            continue
        exec(compile(src, str(NOTEBOOK), "exec"), ns)  # noqa: S102 - the repository's own notebook
        if "CONFIG = {" in src and steps:
            ns["CONFIG"]["steps"] = steps
    exec(compile(cells[end].split("\n\nprobe = ")[0], str(NOTEBOOK), "exec"), ns)  # noqa: S102 - train_gpt, no run
    return ns


def recipe_model(vocab: int, context: int, d: int = 128, layers: int = 4, heads: int = 4):
    """A GPT-2-shaped model as nanoGPT's CPU recipe sizes it: pre-LN, no biases, GELU MLP, tied output layer."""
    import torch
    from torch import nn
    from torch.nn import functional as F

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


def train_recipe(ns: dict, seconds: float, seed: int) -> tuple[object, int, float]:
    """Train the recipe model on the notebook's stream for ``seconds``; return it, its steps and its seconds."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    lm, V, context = ns["lm"], ns["V"], ns["CONFIG"]["context"]
    torch.manual_seed(seed)
    model = recipe_model(V, context).to(ns["DEVICE"])
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)

    def step(i: int, total: int) -> None:
        warm = 100
        frac = min(1.0, max(0.0, (i - warm) / max(1, total - warm)))
        lr = 1e-3 * (i + 1) / warm if i < warm else 1e-4 + 0.5 * (1 + math.cos(math.pi * frac)) * (1e-3 - 1e-4)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y, _ = (torch.from_numpy(a).to(ns["DEVICE"]) for a in
                   lm.random_windows(ns["train_tokens"], ns["train_conds"], context, 12, rng))
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


def sliding_scores(ns: dict, models: dict) -> dict[str, float]:
    """Perplexity of each model (and of the bigram and trigram) on notebook 04's validation targets, sliding windows."""
    import numpy as np

    lm, V, CONFIG = ns["lm"], ns["V"], ns["CONFIG"]
    tokens, conds, context, stride = ns["eval_tokens"], ns["eval_conds"], CONFIG["context"], CONFIG["eval_stride"]
    x, y, c, new = lm.sliding_windows(tokens, conds, context, stride)
    at = stride * np.arange(len(x))[:, None] + np.arange(1, context + 1)
    t = at[new]
    keep = (t >= 2) & ~np.isin(tokens[t], ns["CONTROL_IDS"])
    t = t[keep]
    train = ns["train_tokens"]
    out = {"bigram": lm.perplexity(lm.bigram_logprobs(train, tokens[t - 1], tokens[t], V)),
           "trigram": lm.perplexity(lm.trigram_logprobs(train, tokens[t - 2], tokens[t - 1], tokens[t], V))}
    for name, model in models.items():
        out[name] = lm.perplexity(-ns["token_losses"](model, x, y, c)[new][keep])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 7])
    parser.add_argument("--steps", type=int, help="the notebook GPT's steps (default: the notebook's preset)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rows = []
    for seed in args.seeds:
        os.environ["DLNLP_SEED"] = str(seed)
        ns = notebook_namespace(args.steps)
        steps, batch, context = ns["CONFIG"]["steps"], ns["CONFIG"]["batch_size"], ns["CONFIG"]["context"]
        ns["torch"].manual_seed(seed)
        _, _, _, gpt_seconds = ns["train_gpt"](ns["gpt"], steps, seed)
        recipe, recipe_steps, recipe_seconds = train_recipe(ns, gpt_seconds, seed)
        ppl = sliding_scores(ns, {"notebook GPT": ns["gpt"], "nanoGPT recipe": recipe})
        row = {"seed": seed, "notebook_gpt": {"steps": steps, "seconds": round(gpt_seconds, 1),
                                              "tokens_per_second": round(steps * batch * context / gpt_seconds),
                                              "perplexity": round(ppl["notebook GPT"], 2)},
               "nanogpt_recipe": {"steps": recipe_steps, "seconds": round(recipe_seconds, 1),
                                  "tokens_per_second": round(recipe_steps * 12 * context / recipe_seconds),
                                  "perplexity": round(ppl["nanoGPT recipe"], 2)},
               "bigram_perplexity": round(ppl["bigram"], 2), "trigram_perplexity": round(ppl["trigram"], 2),
               "notebook_vs_recipe": round(ppl["notebook GPT"] / ppl["nanoGPT recipe"] - 1, 4)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"preset": ns["SIZE"], "runs": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
