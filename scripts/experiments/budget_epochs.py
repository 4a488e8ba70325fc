"""Choose notebook 03's fine-tuning epochs per label budget on validation reviews.

Usage: ``python scripts/experiments/budget_epochs.py [--seeds 42] [--budget 256:2,4,6] [--budget 1024:1,2,3] [--out FILE]``.

The notebook's own cells (data, tokenizer, checkpoint, ``new_classifier``, ``fine_tune``, ``predict``) are executed
from ``notebooks/03_bert_classification.ipynb``, so the runs follow the notebook as it is. For every seed and budget N,
the first draw of the label-budget experiment (``stratified_indices(pool labels, N, SEED)``) is fine-tuned once per
candidate epoch count, each run with its own warm-up and decay over its own length, and scored on the notebook's
``n_val`` validation reviews (never the test subset). The test subset is not read: the choice stays blind to it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_bert_classification.ipynb"
NEEDED = ("SIZE = helpers.preset()", "import gc", "CHECKPOINT = None", "imdb = helpers.load_imdb(",
          "train_ids = bert.encode(", "def new_classifier(", "val_texts, val_labels =", "def fine_tune(")


def notebook_namespace(seed: int) -> dict:
    """Run the cells of notebook 03 that define its data and fine-tuning recipe (no training run); return their globals."""
    os.environ["DLNLP_SEED"] = str(seed)
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    ns: dict = {"__name__": "__notebook03__"}
    for marker in NEEDED:
        src = next(s for s in cells if s.startswith(marker) or f"\n{marker}" in s)
        if marker == "def fine_tune(":
            src = src.split("\n\nstart = time.perf_counter()")[0]  # the recipe, not section 6's training run
        if marker == "def new_classifier(":
            src = src.split("\n\nmodel = new_classifier(")[0]
        exec(compile(src, str(NOTEBOOK), "exec"), ns)  # noqa: S102 - the repository's own notebook
    return ns


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
    parser.add_argument("--n-val", type=int, default=None, help="validation reviews (default: the notebook's n_val)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    budgets = args.budget or [(256, [2, 4, 6]), (1024, [1, 2, 3])]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        ns = notebook_namespace(seed)
        helpers = ns["helpers"]
        n_val = args.n_val or len(ns["val_ids"])
        val_ids, val_labels = ns["val_ids"][:n_val], ns["val_labels"][:n_val]
        for n, epoch_list in budgets:
            idx = helpers.data.stratified_indices(ns["imdb"].train.labels, n, seed=ns["SEED"])  # the notebook's first draw
            for epochs in epoch_list:
                model = ns["new_classifier"](ns["SEED"])
                start = time.perf_counter()
                ns["fine_tune"](model, [ns["train_ids"][i] for i in idx], ns["imdb"].train.labels[idx], epochs, ns["SEED"],
                                desc=f"{n:,} reviews, {epochs} epochs")
                seconds = time.perf_counter() - start
                accuracy = float((ns["predict"](model, val_ids)[0] == val_labels).mean())
                rows.append({"seed": seed, "budget": n, "epochs": epochs, "val_accuracy": accuracy,
                             "n_val": n_val, "seconds": seconds})
                print(f"seed {seed}, {n:,} labelled reviews, {epochs} epochs: validation {accuracy:.1%} "
                      f"({n_val} reviews), {seconds:.0f} s", flush=True)
                del model
    print("\n| seed | labelled reviews | epochs | validation accuracy | seconds |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['budget']:,} | {r['epochs']} | {100 * r['val_accuracy']:.1f} % | {r['seconds']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
