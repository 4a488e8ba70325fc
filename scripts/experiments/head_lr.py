"""Choose notebook 03's learning rate for the new head (pooler and classifier) on validation reviews.

Usage: ``python scripts/experiments/head_lr.py [--seeds 42,0,7] [--head-lrs 1.5e-4,2e-3] [--bf16] [--out FILE]``.

For every seed and candidate rate, MiniLM is fine-tuned on the preset's whole labelled pool for the notebook's epochs
(``helpers.bert.fine_tune``: every layer from token ids, with notebook 03's recipe) and scored on the notebook's ``n_val``
validation reviews. The test subset is never read, so the choice stays blind to it. A head rate equal to the
encoder's ``lr`` is "one rate for every weight".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "4")  # as notebook 03's imports cell, before torch starts
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # helpers/, when run from a checkout without installing it

import helpers  # noqa: E402
from helpers import bert  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_epochs import CONFIGS, prepare  # noqa: E402  - notebook 03's CONFIG values (a test checks them) and data

EPOCHS = {"small": 1, "full": 3}  # notebook 03's CONFIG["epochs"]


def parse_rates(text: str) -> list[float]:
    """'1.5e-4,2e-3' -> [0.00015, 0.002]."""
    try:
        rates = [float(r) for r in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--head-lrs takes comma-separated rates such as 1.5e-4,2e-3, got {text!r}") from err
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError(f"--head-lrs needs positive rates, got {text!r}")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42", help="comma-separated, e.g. 42,0,7")
    parser.add_argument("--head-lrs", type=parse_rates, default=[1.5e-4, 2e-3], help="candidate head rates")
    parser.add_argument("--preset", choices=sorted(CONFIGS), default=None, help="default: $DLNLP_PRESET, else small")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (default float32)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    preset = args.preset or helpers.preset()
    base = CONFIGS[preset]

    import torch
    from transformers import AutoTokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    source = bert.bundled_model_dir()  # the notebook's CHECKPOINT = None
    tokenizer = AutoTokenizer.from_pretrained(source)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        imdb, train_ids, val_ids, val_labels = prepare(tokenizer, base, seed)
        for head_lr in args.head_lrs:
            config = {**base, "head_lr": head_lr}
            model = bert.new_classifier(source, seed, device)
            start = time.perf_counter()
            bert.fine_tune(model, train_ids, imdb.train.labels, EPOCHS[preset], seed, config, bf16=args.bf16,
                           desc=f"head rate {head_lr:g}")
            seconds = time.perf_counter() - start
            accuracy = float((bert.predict(model, val_ids, config, bf16=args.bf16)[0] == val_labels).mean())
            rows.append({"seed": seed, "head_lr": head_lr, "val_accuracy": accuracy, "n_val": len(val_ids),
                         "seconds": seconds})
            print(f"seed {seed}, head rate {head_lr:g}: validation {accuracy:.1%} ({len(val_ids)} reviews), "
                  f"{seconds:.0f} s", flush=True)
            del model
    print("\n| seed | head rate | validation accuracy | seconds |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['head_lr']:g} | {100 * r['val_accuracy']:.1f} % | {r['seconds']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
