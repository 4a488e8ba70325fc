"""Benchmark every notebook: wall time, peak kernel memory and recorded metrics, checked against the targets.

Usage: ``python scripts/bench.py [--preset small|full] [notebooks ...]`` (``make bench``). Each notebook runs in a
fresh kernel via nbconvert; the resident memory of the kernel's process tree is sampled every 0.2 s. Writes
``build/bench-<preset>.json`` and ``build/bench-<preset>.md``. A benchmark, not a test: misses are reported, and
the exit status is 0 unless a notebook fails to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.results import load_results  # noqa: E402
from helpers.runtime import environment_report  # noqa: E402

GB = 1024**3
Rows = list[dict]


def _best(rows: Rows, key: str, where: Callable[[dict], bool]) -> float | None:
    values = [r[key] for r in rows if where(r) and r.get(key) is not None]
    return max(values) if values else None


def _method_has(*words: str) -> Callable[[dict], bool]:
    return lambda r: all(w.lower() in r["method"].lower() for w in words)


def _not_baseline(r: dict) -> bool:
    return "tf-idf" not in r["method"].lower()


# (notebook, preset) -> list of (label, how to read the value from the notebook's rows, target, unit)
METRIC_TARGETS: dict[tuple[str, str], list[tuple[str, Callable[[Rows], float | None], float]]] = {
    ("01_word_embeddings", "full"): [
        ("FastText analogy accuracy", lambda rows: _best(rows, "analogy_accuracy", _method_has("fasttext")), 0.55),
        ("FastText WordSim353 Spearman", lambda rows: _best(rows, "wordsim353", _method_has("fasttext")), 0.55),
        ("Word2Vec skip-gram analogy accuracy", lambda rows: _best(rows, "analogy_accuracy", _method_has("skip-gram")), 0.30),
        ("GloVe analogy accuracy", lambda rows: _best(rows, "analogy_accuracy", _method_has("glove")), 0.25),
    ],
    ("02_lstm_sentiment", "small"): [
        ("TF-IDF baseline, full test set", lambda rows: _best(rows, "test_accuracy", _method_has("tf-idf")), 0.89),
        ("best recurrent model, full test set", lambda rows: _best(rows, "test_accuracy", _not_baseline), 0.88),
    ],
    ("02_lstm_sentiment", "full"): [
        ("TF-IDF baseline, full test set", lambda rows: _best(rows, "test_accuracy", _method_has("tf-idf")), 0.89),
        ("best recurrent model, full test set", lambda rows: _best(rows, "test_accuracy", _not_baseline), 0.90),
    ],
    ("03_bert_classification", "small"): [
        ("fine-tuned BERT, shared test subset", lambda rows: _best(rows, "subset_accuracy", _method_has("fine-tun")), 0.86),
    ],
    ("03_bert_classification", "full"): [
        ("fine-tuned BERT, full test set", lambda rows: _best(rows, "test_accuracy", _method_has("fine-tun")), 0.925),
    ],
}
# (notebook, preset) -> (seconds, GB) budgets; the full preset's budgets are for a GPU machine and not set here.
RESOURCE_TARGETS = {
    ("01_word_embeddings", "small"): (240, 1.5),
    ("02_lstm_sentiment", "small"): (240, 1.5),
    ("03_bert_classification", "small"): (300, 2.0),
}


def machine() -> dict:
    """CPU, memory, accelerator and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = "none"
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip() or "none"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / GB, 1),
            "gpu": gpu, "platform": platform.platform(), "environment": environment_report()}


def run_notebook(path: Path, out_dir: Path, env: dict[str, str]) -> dict:
    """Execute one notebook in a fresh kernel; return wall seconds, peak kernel-tree RSS and the exit code."""
    cmd = [str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.timeout=-1", "--output-dir", str(out_dir), str(path)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    parent, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            rss = sum(child.memory_info().rss for child in parent.children(recursive=True))
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(0.2)
    output = proc.stdout.read() if proc.stdout else ""
    return {"seconds": round(time.perf_counter() - start, 1), "peak_gb": round(peak / GB, 3),
            "returncode": proc.returncode, "log_tail": output[-2000:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=os.environ.get("DLNLP_PRESET", "small"), choices=("small", "full"))
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: all, in order)")
    args = parser.parse_args()
    notebooks = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    out_dir = ROOT / "build" / f"bench-{args.preset}"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DLNLP_PRESET": args.preset, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),
           "KERAS_BACKEND": "tensorflow", "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    os.environ["DLNLP_PRESET"] = args.preset
    report = {"preset": args.preset, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "notebooks": []}
    lines, misses = [], 0
    for path in notebooks:
        name = path.stem
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        print(f"== {name} ({args.preset})", flush=True)
        run = run_notebook(path, out_dir, env)
        rows = [r for r in load_results() if r["notebook"] == name and r["preset"] == args.preset
                and r.get("recorded_at", "") >= started]
        checks = []
        if (name, args.preset) in RESOURCE_TARGETS:
            seconds, gb = RESOURCE_TARGETS[(name, args.preset)]
            checks += [("wall time (s)", run["seconds"], seconds, "<="), ("peak kernel memory (GB)", run["peak_gb"], gb, "<=")]
        for label, read, target in METRIC_TARGETS.get((name, args.preset), []):
            checks.append((label, read(rows), target, ">="))
        entry = {"notebook": name, **{k: v for k, v in run.items() if k != "log_tail"}, "rows": rows, "checks": []}
        if run["returncode"] != 0:
            print(run["log_tail"])
        for label, value, target, op in checks:
            ok = value is not None and (value <= target if op == "<=" else value >= target)
            misses += not ok
            entry["checks"].append({"what": label, "value": value, "target": f"{op} {target}", "met": ok})
            shown = "not recorded" if value is None else f"{value:.4g}"
            lines.append(f"| {name} | {label} | {shown} | {op} {target} | {'met' if ok else '**MISS**'} |")
            print(f"  {'met ' if ok else 'MISS'} {label}: {shown} (target {op} {target})")
        for r in rows:
            print(f"  row: {r['method']}: subset {r.get('subset_accuracy')}, test {r.get('test_accuracy')}, "
                  f"train {r.get('train_seconds')} s, params {r.get('n_params')}")
        report["notebooks"].append(entry)
    m = report["machine"]
    md = [f"Preset `{args.preset}`, {report['date']}, on {m['cpu_count']} × {m['cpu']}, {m['memory_gb']} GB RAM, "
          f"GPU: {m['gpu']}.", "", "| notebook | measure | value | target | |", "|---|---|---|---|---|", *lines, "",
          "| notebook | method | subset acc. | test acc. | train s | parameters | ms/review |", "|---|---|---|---|---|---|---|"]
    fmt = lambda v, f: "–" if v is None else format(v, f)  # noqa: E731
    for entry in report["notebooks"]:
        for r in entry["rows"]:
            md.append(f"| {entry['notebook']} | {r['method']} | {fmt(r.get('subset_accuracy'), '.3f')} | "
                      f"{fmt(r.get('test_accuracy'), '.3f')} | {fmt(r.get('train_seconds'), '.0f')} | "
                      f"{fmt(r.get('n_params'), ',')} | {fmt(r.get('ms_per_review'), '.2f')} |")
    (ROOT / "build" / f"bench-{args.preset}.json").write_text(json.dumps(report, indent=1, default=str))
    (ROOT / "build" / f"bench-{args.preset}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"\n{misses} target(s) missed; wrote build/bench-{args.preset}.json and .md")
    return 1 if any(e["returncode"] != 0 for e in report["notebooks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
