"""Fine-tune only MiniLM's top layers on cached hidden states: accuracy and time against fine-tuning every layer.

Usage: ``python scripts/experiments/top_layers.py [--seeds 42] [--variants 1:cls,2:cls,1:mean,2:mean] [--epochs 1,3]
[--batch-sizes 16,8] [--full] [--out FILE]``.

The lower layers of a fine-tuned model move little; if they are frozen, their output is the same in every epoch, so it
can be computed once (one inference pass) and the top ``k`` layers plus a head trained on that cache. Each variant
``k:head`` trains the top ``k`` layers and a head (``cls``: BERT's pooler and a linear layer on [CLS], as
``AutoModelForSequenceClassification``; ``mean``: a linear layer on the masked mean of the last hidden states, the
pooling all-MiniLM-L6-v2 was trained with) with notebook 03's recipe (AdamW, warm-up and linear decay, clipping,
``lr`` for the layers and ``head_lr`` for the head), once per epoch count and batch size asked for, and is scored on
the notebook's ``n_val`` validation reviews after every epoch. ``--full`` adds notebook 03's full fine-tuning (one
epoch) for comparison. Float32; the test subset is never read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "4")  # as notebook 03's imports cell, before torch starts
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # helpers/, when run from a checkout without installing it

from helpers import bert, top_layers  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_epochs import CONFIGS, prepare  # noqa: E402


def parse_variants(text: str) -> list[tuple[int, str]]:
    """'1:cls,2:mean' -> [(1, 'cls'), (2, 'mean')]."""
    out = []
    for part in text.split(","):
        k, _, head = part.partition(":")
        if not k.isdigit() or head not in ("cls", "mean"):
            raise argparse.ArgumentTypeError(f"--variants takes k:cls or k:mean items such as 2:cls, got {part!r}")
        out.append((int(k), head))
    return out


def variant(encoder, k: int, head: str, seed: int, frozen: int):
    """Notebook 03's TopLayers with ``frozen`` frozen layers run first (on the fly), and a mean-pooling head if asked."""
    import copy

    import torch

    class MeanPool(torch.nn.Module):
        """The masked mean of the tokens (set by ``Variant.forward``), in place of the [CLS] pooler."""

        def forward(self, hidden):
            m = self.mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * m).sum(1) / m.sum(1)

    class Variant(top_layers.TopLayers):
        def __init__(self):
            super().__init__(encoder, k, seed)
            n = encoder.config.num_hidden_layers
            self.frozen = torch.nn.ModuleList(copy.deepcopy(encoder.encoder.layer[n - k - frozen : n - k]))
            self.frozen.requires_grad_(False)
            if head == "mean":
                self.pooler = MeanPool()

        def encode(self, hidden, mask):
            if len(self.frozen):
                with torch.no_grad():
                    additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
                    for layer in self.frozen:
                        out = layer(hidden, attention_mask=additive)
                        hidden = out[0] if isinstance(out, tuple) else out
            return super().encode(hidden, mask)

        def forward(self, hidden, mask):
            if isinstance(self.pooler, MeanPool):
                self.pooler.mask = mask
            return super().forward(hidden, mask)

    return Variant()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--variants", type=parse_variants, default=parse_variants("1:cls,2:cls,1:mean,2:mean"))
    parser.add_argument("--epochs", default="3", help="comma-separated, e.g. 1,2: one run per value")
    parser.add_argument("--lr", type=float, default=None, help="layer rate (default: the notebook's lr)")
    parser.add_argument("--head-lr", type=float, default=None, help="head rate (default: the notebook's head_lr)")
    parser.add_argument("--n-train", type=int, default=None, help="train on the first N pool reviews")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated, e.g. 16,8 (default: the notebook's)")
    parser.add_argument("--full", action="store_true", help="also fine-tune every layer for one epoch")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    config = dict(CONFIGS["small"])
    config["lr"] = args.lr or config["lr"]
    config["head_lr"] = args.head_lr or config["head_lr"]
    epochs_list = [int(e) for e in args.epochs.split(",")]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [config["batch_size"]]

    from transformers import AutoModel, AutoTokenizer

    source = bert.bundled_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(source)
    rows = []
    deepest = max(k for k, _ in args.variants)
    for seed in (int(s) for s in args.seeds.split(",")):
        imdb, train_ids, val_ids, val_labels = prepare(tokenizer, config, seed)
        labels = imdb.train.labels
        if args.n_train:
            train_ids, labels = train_ids[: args.n_train], labels[: args.n_train]
        encoder = AutoModel.from_pretrained(source).eval()
        cut = encoder.config.num_hidden_layers - deepest  # one cache for every variant: the deepest one's input
        start = time.perf_counter()
        cache = {part: top_layers.frozen_pass(encoder, ids, cut, config)[1]
                 for part, ids in (("train", train_ids), ("val", val_ids))}
        cache_seconds = time.perf_counter() - start
        print(f"seed {seed}: cached layer {cut} states of {len(train_ids) + len(val_ids)} reviews in {cache_seconds:.0f} s",
              flush=True)
        for (k, head), batch_size, epochs in itertools.product(args.variants, batch_sizes, epochs_list):
            top = variant(encoder, k, head, seed, frozen=deepest - k)
            start = time.perf_counter()
            _, history = top_layers.train_top(top, cache["train"], labels, epochs, seed,
                                              {**config, "batch_size": batch_size},
                                              val=(cache["val"], val_labels), desc=f"top {k} + {head}, batch {batch_size}")
            seconds = time.perf_counter() - start
            rows.append({"seed": seed, "k": k, "head": head, "batch_size": batch_size, "epochs": epochs,
                         "val_accuracy": history["val_accuracy"], "seconds": seconds, "cache_seconds": cache_seconds,
                         "n_train": len(train_ids)})
            accuracies = [f"{a:.1%}" for a in history["val_accuracy"]]
            print(f"  top {k} + {head}, batch {batch_size}, {epochs} epoch(s): validation {accuracies}, {seconds:.0f} s",
                  flush=True)
        if args.full:
            model = bert.new_classifier(source, seed, "cpu")
            start = time.perf_counter()
            bert.fine_tune(model, train_ids, labels, 1, seed, config)
            seconds = time.perf_counter() - start
            acc = float((bert.predict(model, val_ids, config)[0] == val_labels).mean())
            rows.append({"seed": seed, "k": encoder.config.num_hidden_layers, "head": "cls (every layer)",
                         "val_accuracy": [acc], "seconds": seconds, "n_train": len(train_ids)})
            print(f"  every layer, 1 epoch: validation {acc:.1%}, {seconds:.0f} s", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"config": config, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
