"""Time notebook 04's GPT training step under each speed lever, on this machine, in fresh processes.

Usage: ``python scripts/experiments/gpt_levers.py [--steps 60] [--repeats 3] [--preset small]``. Each lever runs in its
own process (oneDNN reads its cache size once, when torch starts), the variants alternate across repeats, and the median
tokens per second is printed with the spread. The data, the model and its training step are notebook 04's, from
``helpers.gpt`` and ``helpers.lm`` with notebook 04's settings (``gpt_side_by_side.prepare`` and ``CONFIGS``); the
step is ``helpers.gpt.train_step`` at a constant learning rate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEVERS = {  # name -> (environment, options for the timed steps)
    "notebook (float32, oneDNN cache 4)": ({}, {}),
    "oneDNN cache default (1024)": ({"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024"}, {}),
    "fused AdamW": ({}, {"fused": True}),
    "fused AdamW + oneDNN cache 1024": ({"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024"}, {"fused": True}),
    "bfloat16 autocast": ({}, {"bf16": True}),
    "batch 32": ({}, {"batch": 32}),
    "torch.compile": ({}, {"compile": True}),
}


def child(options: dict, steps: int, preset: str | None) -> dict:
    """Run in a fresh process: notebook 04's data and GPT, then ``steps`` timed training steps (after 5 untimed)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "4")  # notebook 04's, unless the lever set it
    sys.path.insert(0, str(ROOT / "scripts" / "experiments"))
    import gpt_side_by_side
    import numpy as np
    import torch

    import helpers
    from helpers import gpt as hgpt
    from helpers import lm

    setup = gpt_side_by_side.prepare(preset or helpers.preset(), 42)  # the notebook's seed, or $DLNLP_SEED
    config = setup.config
    model = gpt_side_by_side.notebook_gpt(setup)
    opt = torch.optim.AdamW(hgpt.param_groups(model, 0.1), lr=config["lr"], betas=(0.9, 0.95),
                            fused=options.get("fused") or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)  # a constant rate: the schedule costs the same
    batch = options.get("batch", config["batch_size"])
    forward = torch.compile(model) if options.get("compile") else model
    rng = np.random.default_rng(0)

    def step() -> None:
        x, y, c = (torch.from_numpy(a).to(setup.device) for a in
                   lm.random_windows(setup.train_tokens, setup.train_conds, config["context"], batch, rng))
        hgpt.train_step(forward, opt, sched, x, y, c, bf16=bool(options.get("bf16")))

    start = time.perf_counter()
    for _ in range(5):
        step()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {"tokens_per_second": steps * batch * config["context"] / seconds, "warm_up_seconds": warm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="lever names to run (default: all)")
    parser.add_argument("--preset", choices=("small", "full"), default=None, help="default: $DLNLP_PRESET, else small")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child), args.steps, args.preset)), flush=True)
        return 0
    levers = {k: v for k, v in LEVERS.items() if not args.only or k in args.only}
    found: dict[str, list[dict]] = {name: [] for name in levers}
    for _ in range(args.repeats):
        for name, (env, options) in levers.items():
            preset = ["--preset", args.preset] if args.preset else []
            out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), *preset,
                                  "--child", json.dumps(options)],
                                 env={**os.environ, **env}, capture_output=True, text=True, check=True)
            found[name].append(json.loads(next(line for line in out.stdout.splitlines()
                                                if line.startswith("RESULT "))[7:]))
    for name, runs in found.items():
        rates = [r["tokens_per_second"] for r in runs]
        print(f"{name:38} {statistics.median(rates):8,.0f} tokens/s (min {min(rates):,.0f}, max {max(rates):,.0f}); "
              f"first 5 steps {statistics.median(r['warm_up_seconds'] for r in runs):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
