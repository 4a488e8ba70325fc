"""Choose notebook 03's fine-tuning epochs per label budget on validation reviews.

Usage: ``python scripts/experiments/budget_epochs.py [--seeds 42] [--budget 256:2,4,6] [--budget 1024:1,2,3]
[--preset small] [--bf16] [--out FILE]``.

The settings mirror notebook 03's ``CONFIG`` (its cell ``b6041f31``) for each preset, in ``CONFIGS`` below;
tests/test_scripts.py checks that they agree. The data and the checkpoint are the notebook's, from ``helpers``
(``helpers.load_imdb``, ``helpers.bert.encode``, and ``helpers.bert.predict``, which tests/test_bert_notebook.py keeps
the notebook's); the runs fine-tune every layer from token ids (``helpers.bert.new_classifier`` and ``fine_tune``: the
notebook's optimizer and schedule, not its top-layer training on a cache). For every seed and budget N, the first draw
of the label-budget experiment (``stratified_indices(pool labels, N, seed)``) is
fine-tuned once per candidate epoch count, each run with its own warm-up and decay over its own length, and scored on
the notebook's ``n_val`` validation reviews (never the test subset). The test subset is not read: the choice stays blind
to it. Runs are in float32 unless ``--bf16`` (the notebook picks its precision by timing a training step).
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

# What the fine-tuning runs read of notebook 03's CONFIG, per preset (helpers.preset(), or --preset).
CONFIGS = {
    "small": {"n_train": 2400, "max_length": 128, "head": 32, "batch_size": 16, "lr": 1.5e-4, "head_lr": 2e-3,
              "n_val": 500, "pad_multiple": 32},
    "full": {"n_train": None, "max_length": 512, "head": 128, "batch_size": 32, "lr": 5e-5, "head_lr": 5e-4,
             "n_val": 2500, "pad_multiple": 32},
}


def prepare(tokenizer, config: dict, seed: int) -> tuple:
    """Notebook 03's data for ``seed``: (imdb, training ids, validation ids, validation labels), as the notebook makes them."""
    os.environ[helpers.runtime.SEED_ENV] = str(seed)  # as the notebook run with DLNLP_SEED=seed
    seed = helpers.seed_everything(seed)
    imdb = helpers.load_imdb(n_train=config["n_train"], n_unsup=0, seed=seed)
    train_ids = bert.encode(tokenizer, imdb.train.texts, config["max_length"], config["head"])
    val_ids = bert.encode(tokenizer, imdb.val.texts[: config["n_val"]], config["max_length"], config["head"])
    return imdb, train_ids, val_ids, imdb.val.labels[: config["n_val"]]


def parse_budget(text: str) -> tuple[int, list[int]]:
    """'256:2,4,6' -> (256, [2, 4, 6])."""
    try:
        n, epochs = text.split(":")
        return int(n), [int(e) for e in epochs.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--budget takes N:E1,E2,... such as 256:2,4,6, got {text!r}") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42", help="comma-separated, e.g. 42,0,7")
    parser.add_argument("--budget", type=parse_budget, action="append",
                        help="N:E1,E2,... (default 256:2,4,6 and 1024:1,2,3)")
    parser.add_argument("--preset", choices=sorted(CONFIGS), default=None, help="default: $DLNLP_PRESET, else small")
    parser.add_argument("--n-val", type=int, default=None, help="validation reviews (default: the notebook's n_val)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (default float32)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    budgets = args.budget or [(256, [2, 4, 6]), (1024, [1, 2, 3])]
    config = CONFIGS[args.preset or helpers.preset()]

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    source = bert.bundled_model_dir()  # the notebook's CHECKPOINT = None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        imdb, train_ids, val_ids, val_labels = prepare(tokenizer, {**config, "n_val": args.n_val or config["n_val"]},
                                                       seed)
        for n, epoch_list in budgets:
            idx = helpers.data.stratified_indices(imdb.train.labels, n, seed=seed)  # the notebook's first draw
            for epochs in epoch_list:
                model = bert.new_classifier(source, seed, device)
                start = time.perf_counter()
                bert.fine_tune(model, [train_ids[i] for i in idx], imdb.train.labels[idx], epochs, seed, config,
                               bf16=args.bf16, desc=f"{n:,} reviews, {epochs} epochs")
                seconds = time.perf_counter() - start
                accuracy = float((bert.predict(model, val_ids, config, bf16=args.bf16)[0] == val_labels).mean())
                rows.append({"seed": seed, "budget": n, "epochs": epochs, "val_accuracy": accuracy,
                             "n_val": len(val_ids), "seconds": seconds})
                print(f"seed {seed}, {n:,} labelled reviews, {epochs} epochs: validation {accuracy:.1%} "
                      f"({len(val_ids)} reviews), {seconds:.0f} s", flush=True)
                del model
    print("\n| seed | labelled reviews | epochs | validation accuracy | seconds |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['budget']:,} | {r['epochs']} | {100 * r['val_accuracy']:.1f} % | {r['seconds']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
