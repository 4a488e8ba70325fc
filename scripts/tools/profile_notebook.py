"""Profile a notebook cell by cell: wall time and peak resident memory of the kernel during each cell.

Usage: ``python scripts/tools/profile_notebook.py notebooks/02_lstm_sentiment.ipynb [--top 12] [--in-order] [--output FILE]``.
Runs the notebook in a fresh kernel (like ``make bench``) and prints the cells that take the most time and raise
memory the most, so a missed target can be traced to data loading, tokenisation, training or evaluation.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

GB = 1024**3


class PeakSampler(threading.Thread):
    """Samples the RSS of a process tree every 0.1 s and keeps the peak since the last reset."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.running = psutil.Process(pid), 0, True

    def rss(self) -> int:
        try:
            procs = [self.process, *self.process.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs)
        except psutil.Error:
            return 0

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.1)

    def reset(self) -> int:
        peak, self.peak = self.peak, self.rss()
        return max(peak, self.peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--in-order", action="store_true", help="list every code cell in notebook order")
    parser.add_argument("--output", type=Path, help="also write the executed notebook (with its outputs) here")
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(nb, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(args.notebook.parent)}})
    rows, failures = [], []
    with client.setup_kernel():
        sampler = PeakSampler(client.km.provisioner.process.pid)
        sampler.start()
        sampler.reset()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            before = sampler.rss()
            start = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as err:  # keep profiling; the failure is reported at the end
                failures.append(f"cell {index}: {str(err).strip().splitlines()[-1]}")
            seconds = time.perf_counter() - start
            peak, after = sampler.reset(), sampler.rss()
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            rows.append((index, seconds, peak / GB, (peak - before) / GB, first[:62], after / GB))
        sampler.running = False
    if args.output:
        nbformat.write(nb, args.output)
    total = sum(r[1] for r in rows)
    print(f"{args.notebook.name}: {total:.0f} s in code cells, peak {max(r[2] for r in rows):.2f} GB")
    orders = {"slowest first": lambda r: -r[1], "largest memory rise first": lambda r: -r[3]}
    if args.in_order:
        orders = {"in notebook order": lambda r: r[0]}
    for title, key in orders.items():
        print(f"\n{'cell':>4} {'seconds':>8} {'peak GB':>8} {'+GB':>6} {'after':>6}  first line   ({title})")
        for r in sorted(rows, key=key)[: None if args.in_order else args.top]:
            print(f"{r[0]:>4} {r[1]:>8.1f} {r[2]:>8.2f} {r[3]:>+6.2f} {r[5]:>6.2f}  {r[4]}")
    for failure in failures:
        print("FAILED", failure)
    if failures:
        raise SystemExit(1)  # the numbers above are still printed, but a failing notebook must not look like a pass


if __name__ == "__main__":
    main()
