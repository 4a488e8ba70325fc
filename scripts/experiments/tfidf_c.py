"""Choose the TF-IDF baseline's regularisation strength C (notebook 02) on validation reviews.

Usage: ``python scripts/experiments/tfidf_c.py [--seeds 42,0,7] [--cs 0.5,1,2,4,8,16] [--out FILE]``.

For every seed and candidate C, notebook 02's baseline (hashed unigrams and bigrams, sublinear TF-IDF, logistic
regression) is fitted on the training reviews and scored on the whole-movie validation reviews. The test set is never
read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # helpers/, when run from a checkout without installing it

import helpers  # noqa: E402


def parse_cs(text: str) -> list[float]:
    """'1,4' -> [1.0, 4.0]."""
    try:
        cs = [float(c) for c in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--cs takes comma-separated values such as 1,4,16, got {text!r}") from err
    if not cs or any(c <= 0 for c in cs):
        raise argparse.ArgumentTypeError(f"--cs needs positive values, got {text!r}")
    return cs


def baseline(c: float):
    """Notebook 02's TF-IDF + logistic regression pipeline with regularisation strength c."""
    import numpy as np
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        HashingVectorizer(ngram_range=(1, 2), n_features=2**20, alternate_sign=False, norm=None, dtype=np.float32),
        TfidfTransformer(sublinear_tf=True), LogisticRegression(C=c, max_iter=1000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42", help="comma-separated, e.g. 42,0,7")
    parser.add_argument("--cs", type=parse_cs, default=[0.5, 1, 2, 4, 8, 16], help="candidate values of C")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        os.environ[helpers.runtime.SEED_ENV] = str(seed)  # as the notebook run with DLNLP_SEED=seed
        helpers.seed_everything(seed)
        imdb = helpers.load_imdb(n_unsup=0)
        for c in args.cs:
            start = time.perf_counter()
            model = baseline(c).fit(imdb.train.texts, imdb.train.labels)
            accuracy = float((model.predict(imdb.val.texts) == imdb.val.labels).mean())
            rows.append({"seed": seed, "C": c, "val_accuracy": accuracy, "seconds": time.perf_counter() - start})
            print(f"seed {seed}, C = {c:g}: validation {accuracy:.2%}", flush=True)
    print("\n| seed | C | validation accuracy |\n|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['C']:g} | {100 * r['val_accuracy']:.2f} % |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
