"""Choose notebook 02's review length and batch size on validation reviews, with its best model's recipe.

Usage: ``python scripts/experiments/recurrent_plan.py [--seeds 42,0,7] [--plan 200:128 --plan 200:256 ...] [--out FILE]``.

For every seed and plan (``max_len:batch_size``), the GRU with notebook 01's word2vec vectors, fine-tuned (notebook 02's
best model on the small preset), is trained by the notebook's recipe (the same vocabulary, keep-the-end cut, length
buckets, Adam with cosine decay, early stopping on validation accuracy) in float32, and its best validation accuracy is
reported with the training time. The test set is never read. The settings mirror notebook 02's CONFIG cell (a test
checks them), and the data and layers come from ``helpers``, not from the notebook's cells.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # helpers/, when run from a checkout without installing it

import helpers  # noqa: E402

# What the runs read of notebook 02's CONFIG, per preset.
CONFIGS = {
    "small": {"vocab_size": 20_000, "max_len": 200, "batch_size": 128, "units": 64, "max_epochs": 2, "patience": 1,
              "learning_rate": 3e-3, "cosine_decay": True},
    "full": {"vocab_size": 40_000, "max_len": 512, "batch_size": 64, "units": 128, "max_epochs": 10, "patience": 2,
             "learning_rate": 1e-3, "cosine_decay": False},
}


def parse_plan(text: str) -> tuple[int, int]:
    """'200:128' -> (200, 128): review length and batch size."""
    try:
        max_len, batch_size = (int(part) for part in text.split(":"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--plan takes MAX_LEN:BATCH_SIZE such as 200:128, got {text!r}") from err
    if max_len < 1 or batch_size < 1:
        raise argparse.ArgumentTypeError(f"--plan needs positive numbers, got {text!r}")
    return max_len, batch_size


def train_once(seed: int, config: dict, max_len: int, batch_size: int) -> dict:
    """Notebook 02's recipe for its fine-tuned word2vec GRU at one plan; best validation accuracy and seconds."""
    import keras
    import numpy as np
    import tensorflow as tf

    from helpers.embeddings import load_or_train_vectors
    from helpers.sequences import bucket_batches, embedding_matrix, keep_last

    os.environ[helpers.runtime.SEED_ENV] = str(seed)  # as the notebook run with DLNLP_SEED=seed
    seed = helpers.seed_everything(seed)
    imdb = helpers.load_imdb(n_unsup=0)
    vectorizer = keras.layers.TextVectorization(max_tokens=config["vocab_size"], ragged=True)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(imdb.train.texts).batch(4096))
    vocab = vectorizer.get_vocabulary()

    def to_ids(texts, chunk=4096):
        return [ids for s in range(0, len(texts), chunk)
                for ids in keep_last(vectorizer(tf.constant(texts[s:s + chunk])).numpy(), max_len)]

    train = bucket_batches(to_ids(imdb.train.texts), imdb.train.labels, batch_size)
    val = bucket_batches(to_ids(imdb.val.texts), imdb.val.labels, 256)

    def as_dataset(batches, shuffle=False):
        rng = np.random.default_rng(seed)

        def generate():
            for i in (rng.permutation(len(batches)) if shuffle else range(len(batches))):
                yield batches[i].x, batches[i].y

        spec = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.float32))
        options = tf.data.Options()
        options.autotune.enabled = False
        data = tf.data.Dataset.from_generator(generate, output_signature=spec)
        return data.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2).with_options(options)

    pretrained, _ = embedding_matrix(vocab, load_or_train_vectors(), seed=seed)
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(seed)
    embedding = keras.layers.Embedding(len(vocab), pretrained.shape[1], mask_zero=True)
    embedding.build((None, None))
    embedding.embeddings.assign(pretrained)
    model = keras.Sequential([keras.Input(shape=(None,), dtype="int32"), embedding, keras.layers.GRU(config["units"]),
                              keras.layers.Dense(1, activation="sigmoid", dtype="float32")])
    rate = config["learning_rate"]
    if config["cosine_decay"]:
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=config["max_epochs"] * len(train))
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="binary_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config["patience"], restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(as_dataset(train, shuffle=True), validation_data=as_dataset(val), epochs=config["max_epochs"],
                        callbacks=[stop], verbose=0)
    return {"seed": seed, "max_len": max_len, "batch_size": batch_size,
            "val_accuracy": float(max(history.history["val_accuracy"])), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42", help="comma-separated, e.g. 42,0,7")
    parser.add_argument("--plan", type=parse_plan, action="append",
                        help="MAX_LEN:BATCH_SIZE (default 200:128, 200:256, 128:128, 256:128)")
    parser.add_argument("--preset", choices=sorted(CONFIGS), default=None, help="default: $DLNLP_PRESET, else small")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    config = CONFIGS[args.preset or helpers.preset()]
    plans = args.plan or [(200, 128), (200, 256), (128, 128), (256, 128)]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for max_len, batch_size in plans:
            rows.append(train_once(seed, config, max_len, batch_size))
            r = rows[-1]
            print(f"seed {seed}, length {max_len}, batch {batch_size}: validation {r['val_accuracy']:.2%}, "
                  f"{r['seconds']:.0f} s", flush=True)
    print("\n| seed | length | batch | validation accuracy | seconds |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['max_len']} | {r['batch_size']} | {100 * r['val_accuracy']:.2f} % | {r['seconds']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
