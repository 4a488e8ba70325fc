"""Time notebook 03's and 04's hot loops under the torch that runs this script, to compare two stacks' builds.

Usage: ``python scripts/experiments/torch_stack_bench.py [--repeats 5]`` in each environment (e.g. ``.venv`` and ``.venv-colab``),
ideally alternating on an idle machine. Prints one line per workload: steps per second in float32 and under bfloat16
autocast, with torch's version, threads and oneDNN settings, so a slower stack can be traced to a precision path.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "4")  # as notebook 03 sets it

import torch
from torch import nn


def minilm_step(model: nn.Module, batch: dict[str, torch.Tensor], opt: torch.optim.Optimizer, bf16: bool) -> None:
    """One fine-tuning step of notebook 03's classifier on a batch of 16 reviews of 128 pieces."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad()


class TinyGPT(nn.Module):
    """Notebook 04's shape of model (2 layers, 2 heads, width 128, context 64, vocabulary 1,536), from torch's blocks."""

    def __init__(self, vocab: int = 1536, d: int = 128, context: int = 64) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        layer = nn.TransformerEncoderLayer(d, 2, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tok(x) + self.pos(torch.arange(x.shape[1]))
        return self.head(self.blocks(h, mask=self.mask, is_causal=True))


def gpt_step(model: nn.Module, x: torch.Tensor, opt: torch.optim.Optimizer, bf16: bool) -> None:
    """One training step of the GPT on 16 windows of 64 tokens."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x[:, :-1])
        loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())
    loss.backward()
    opt.step()
    opt.zero_grad()


def rate(step, repeats: int, warmup: int = 2) -> float:
    """Steps per second of ``step()``, after ``warmup`` untimed steps."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from transformers import AutoModelForSequenceClassification

    from helpers.bert import bundled_model_dir

    torch.manual_seed(0)
    bert = AutoModelForSequenceClassification.from_pretrained(bundled_model_dir(), num_labels=2)
    bert_opt = torch.optim.AdamW(bert.parameters(), lr=1e-5)
    batch = {"input_ids": torch.randint(1000, 20000, (16, 128)), "attention_mask": torch.ones(16, 128, dtype=torch.long),
             "labels": torch.randint(0, 2, (16,))}
    gpt = TinyGPT()
    gpt_opt = torch.optim.AdamW(gpt.parameters(), lr=1e-3)
    windows = torch.randint(0, 1536, (16, 65))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, oneDNN cache "
          f"{os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY']}, mkldnn {torch.backends.mkldnn.is_available()}")
    for name, step in (("03 MiniLM fine-tuning", lambda bf16: minilm_step(bert, batch, bert_opt, bf16)),
                       ("04 GPT training", lambda bf16: gpt_step(gpt, windows, gpt_opt, bf16))):
        f32 = rate(partial(step, False), args.repeats)
        b16 = rate(partial(step, True), args.repeats)
        print(f"{name}: float32 {f32:.2f} steps/s, bfloat16 autocast {b16:.2f} steps/s")


if __name__ == "__main__":
    main()
