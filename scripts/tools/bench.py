"""Benchmark every notebook: wall time, peak kernel memory and recorded metrics, checked against the targets.

Usage: ``python scripts/tools/bench.py [--preset small|full] [notebooks ...]`` (``make bench``). Each notebook runs in a
fresh kernel via nbconvert; the resident memory of the kernel's process tree is sampled every 0.2 s. The run is
merged into ``docs/benchmarks.json`` (one section per preset and machine; a notebook run again replaces its own
entry, other sections and notebooks stay), and ``docs/benchmarks.md`` is rendered from that file alone: neither is
edited by hand. A copy of this run goes to ``build/bench-<preset>.json``. A benchmark, not a test: misses are
reported, and the exit status is 0 unless a notebook fails to run.

The run's machine description carries ``speed_probe`` (``helpers.speed.probe``: a few seconds' timing of Python and
of float32 matrix products with the notebooks' threads), which ``scripts/tools/calibrate_estimate.py`` turns into the
preflight's run-time estimate.

``--seeds 42,0,7`` runs every notebook once per seed (``DLNLP_SEED``) and tabulates each target per seed; the first
seed's run is the notebook's main entry. When notebook 04 runs on the small preset, ``scripts/experiments/gpt_side_by_side.py``
then trains its GPT and nanoGPT's CPU recipe for the same seconds on the same stream, for the same seeds
(``--no-side-by-side`` skips it: it costs about twice notebook 04's training time per seed).

The machine description carries the CPU budget (``helpers.runtime.cpu_budget``): a run with fewer usable CPUs than
cores (a cgroup quota, an affinity mask, ``DLNLP_THREADS``) gets its own section. ``DLNLP_PRECISION`` (float32 or
bfloat16), when set, is recorded as the run's forced precision.

``--baseline build-of-the-baseline/bench-small.json [--baseline-name ff00e16]`` puts the report that the baseline
commit's own bench wrote, on this machine with the same CPU budget, into this run's section: the section then shows
each notebook's time and peak memory against it, and the time ratios are checked against ``BASELINE_TARGETS``.

``--record-ci LOG [--ci-note TEXT]`` runs no notebook: it reads the output of ``python3 run.py test`` (pytest's last
summary line and the final ``exit N after S s``) into ``docs/benchmarks.json`` (``ci``) and re-renders the docs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from helpers.results import load_results  # noqa: E402
from helpers.runtime import PRECISION_ENV, _version, bfloat16_choice, cpu_budget  # noqa: E402
from helpers.speed import probe  # noqa: E402

GB = 1024**3
Rows = list[dict]


def _best(rows: Rows, key: str, where: Callable[[dict], bool]) -> float | None:
    values = [r[key] for r in rows if where(r) and r.get(key) is not None]
    return max(values) if values else None


def _method_has(*words: str) -> Callable[[dict], bool]:
    return lambda r: all(w.lower() in r["method"].lower() for w in words)


def _gpt(rows: Rows) -> dict | None:
    """Notebook 04's language-model row ("GPT language model"): the GPT row with a validation perplexity."""
    return next((r for r in rows if "gpt" in r["method"].lower() and r.get("val_perplexity")), None)


def _control(rows: Rows) -> dict | None:
    """Notebook 04b's row ("GPT sentiment control"): the GPT row with a control accuracy."""
    return next((r for r in rows if "gpt" in r["method"].lower() and r.get("control_accuracy") is not None), None)


def _gain(rows: Rows) -> float | None:
    """How far the GPT's validation perplexity is below the bigram's, as a share of the bigram's."""
    r = _gpt(rows)
    return None if r is None or not r.get("bigram_perplexity") else 1 - r["val_perplexity"] / r["bigram_perplexity"]


def _control_low(rows: Rows) -> float | None:
    r = _control(rows)
    return None if r is None or not r.get("control_interval") else r["control_interval"][0]


def _guided_control_low(rows: Rows) -> float | None:
    r = _control(rows)
    return None if r is None or not r.get("guided_control_interval") else r["guided_control_interval"][0]


def _guided_variety_gap(rows: Rows) -> float | None:
    """Under the same guidance, the GPT's distinct-2 minus the class-conditional bigram's."""
    r = _control(rows)
    if r is None or r.get("guided_distinct_2") is None or r.get("bigram_guided_distinct_2") is None:
        return None
    return r["guided_distinct_2"] - r["bigram_guided_distinct_2"]


def _trigram_gain(rows: Rows) -> float | None:
    """How far the GPT's validation perplexity is below the interpolated trigram's, as a share of the trigram's."""
    r = _gpt(rows)
    return None if r is None or not r.get("trigram_perplexity") else 1 - r["val_perplexity"] / r["trigram_perplexity"]


def _control_over_bigram(rows: Rows) -> float | None:
    """The GPT's control accuracy minus that of the class-conditional bigram judged by the same judge."""
    r = _control(rows)
    if r is None or r.get("control_accuracy") is None or r.get("bigram_control_accuracy") is None:
        return None
    return r["control_accuracy"] - r["bigram_control_accuracy"]


def _side_by_side_worst(entry: dict) -> float | None:
    """The smallest (1 - notebook GPT perplexity / nanoGPT recipe perplexity) over the side-by-side's seeds."""
    runs = (entry.get("side_by_side") or {}).get("runs") or []
    return min(-r["notebook_vs_recipe"] for r in runs) if runs else None


def side_by_side_lines(entry: dict) -> list[str]:
    """Markdown lines for notebook 04's GPT against nanoGPT's CPU recipe (scripts/experiments/gpt_side_by_side.py), per seed."""
    runs = (entry.get("side_by_side") or {}).get("runs") or []
    if not runs:
        return []
    md = ["", "Notebook 04's GPT against nanoGPT's CPU recipe, same stream, same seconds, same sliding windows "
              "(`scripts/experiments/gpt_side_by_side.py`):", "",
          "| seed | notebook GPT: perplexity, tokens/s | nanoGPT recipe: perplexity, tokens/s | GPT vs recipe | trigram |",
          "|---|---|---|---|---|"]
    for r in runs:
        a, b = r["notebook_gpt"], r["nanogpt_recipe"]
        md.append(f"| {r['seed']} | {a['perplexity']:.1f}, {a['tokens_per_second']:,} | {b['perplexity']:.1f}, "
                  f"{b['tokens_per_second']:,} | {100 * r['notebook_vs_recipe']:+.0f} % | {r['trigram_perplexity']:.1f} |")
    return md


def seed_lines(entries: list[dict]) -> list[str]:
    """Markdown lines: every checked measure of every notebook run with several seeds, one column per seed."""
    md: list[str] = []
    for e in entries:
        runs = e.get("seed_runs") or []
        if len(runs) < 2:
            continue
        seeds = [r["seed"] for r in runs]
        md += ["", f"{e['notebook']} across seeds (`DLNLP_SEED`):", "",
               "| measure | target | " + " | ".join(f"seed {s}" for s in seeds) + " | met for every seed |",
               "|---|---|" + "---|" * len(seeds) + "---|"]
        for i, check in enumerate(runs[0]["checks"]):
            values = [r["checks"][i] if i < len(r["checks"]) else None for r in runs]
            cells = [_fmt(v["value"] if v else None, ".4g") for v in values]
            every = all(v is not None and v["met"] for v in values)
            md.append(f"| {check['what']} | {check['target']} | " + " | ".join(cells) + f" | {'yes' if every else '**no**'} |")
    return md


def lm_figures(entry: dict) -> list[str]:
    """Markdown lines for notebook 04's language-model figures: perplexity and bits per byte against the count models."""
    r = _gpt(entry.get("rows", []))
    if entry.get("notebook") != "04_transformers_from_scratch" or r is None or not r.get("trigram_perplexity"):
        return []
    return ["", "Notebook 04, validation (sliding window for the GPT):", "",
            "| model | perplexity | bits per byte |", "|---|---|---|",
            f"| GPT | {_fmt(r.get('val_perplexity'), '.1f')} | {_fmt(r.get('val_bits_per_byte'), '.3f')} |",
            f"| trigram | {_fmt(r.get('trigram_perplexity'), '.1f')} | {_fmt(r.get('trigram_bits_per_byte'), '.3f')} |",
            f"| bigram | {_fmt(r.get('bigram_perplexity'), '.1f')} | {_fmt(r.get('bigram_bits_per_byte'), '.3f')} |",
            f"| unigram | {_fmt(r.get('unigram_perplexity'), '.1f')} | – |"]


def control_figures(entry: dict) -> list[str]:
    """Markdown lines for notebook 04b's sentiment control and guidance, the GPT beside the class-conditional bigram."""
    r = _control(entry.get("rows", []))
    if entry.get("notebook") != "04b_sentiment_control" or r is None:
        return []
    md: list[str] = []
    if r.get("control_interval") and r.get("bigram_control_interval"):
        (lo, hi), (blo, bhi) = r["control_interval"], r["bigram_control_interval"]
        md += ["", f"Notebook 04b, control accuracy (95 % interval): GPT {r['control_accuracy']:.3f} ({lo:.3f}-{hi:.3f}), "
                   f"class-conditional bigram {r['bigram_control_accuracy']:.3f} ({blo:.3f}-{bhi:.3f})."]
    if r.get("guided_control_interval") and r.get("bigram_guided_control_accuracy") is not None:
        glo, ghi = r["guided_control_interval"]
        md += ["", f"With guidance {r.get('guidance', 1.0):g}: GPT control {r['guided_control_accuracy']:.3f} "
                   f"({glo:.3f}-{ghi:.3f}), distinct-2 {r['guided_distinct_2']:.3f}; class-conditional bigram "
                   f"{r['bigram_guided_control_accuracy']:.3f}, distinct-2 {r['bigram_guided_distinct_2']:.3f}."]
    return md


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
        # issue #42: fine-tuned on the pool, at least 86 % on the test subset
        ("fine-tuned BERT, shared test subset", lambda rows: _best(rows, "subset_accuracy", _method_has("fine-tun")), 0.86),
    ],
    ("04_transformers_from_scratch", "small"): [
        ("GPT perplexity below the bigram's (1 - GPT / bigram)", _gain, 0.0),
        ("GPT perplexity below the trigram's (1 - GPT / trigram)", _trigram_gain, 0.0),  # missed on small, by design
    ],
    ("04_transformers_from_scratch", "full"): [
        ("GPT perplexity below the bigram's (1 - GPT / bigram)", _gain, 0.30),
        ("GPT perplexity below the trigram's (1 - GPT / trigram)", _trigram_gain, 0.0),
    ],
    ("04b_sentiment_control", "small"): [
        ("GPT control accuracy, lower end of its 95 % interval (no guidance)", _control_low, 0.5),
        ("GPT control accuracy with guidance 1, lower end of its 95 % interval", _guided_control_low, 0.75),
        ("GPT control accuracy minus the class-conditional bigram's (no guidance)", _control_over_bigram, 0.0),
        ("with guidance 1, GPT distinct-2 minus the class-conditional bigram's", _guided_variety_gap, 0.1),
    ],
    ("04b_sentiment_control", "full"): [
        ("GPT control accuracy", lambda rows: _best(rows, "control_accuracy", _method_has("gpt")), 0.90),
    ],
    ("03_bert_classification", "full"): [
        ("fine-tuned BERT, full test set", lambda rows: _best(rows, "test_accuracy", _method_has("fine-tun")), 0.925),
    ],
}
# (notebook, preset) -> (seconds, GB) budgets; the full preset's budgets are for a GPU machine and not set here.
# Issue #42: every notebook's peak kernel memory within 1.4 GB on the small preset.
RESOURCE_TARGETS = {
    ("01_word_embeddings", "small"): (240, 1.4),
    ("02_lstm_sentiment", "small"): (240, 1.4),
    ("03_bert_classification", "small"): (240, 1.4),  # top-layer fine-tuning on a cache; the label budget is in 03b
    ("03b_label_budget", "small"): (360, 1.4),  # issue #26: the label-budget experiment fits in 360 s
    ("04_transformers_from_scratch", "small"): (300, 1.4),
    ("04b_sentiment_control", "small"): (240, 1.4),
}
# Whole-series budgets on the small preset: (notebooks that count, seconds). The bonus notebook 03b does not count.
SERIES_TARGETS = [(("01_word_embeddings", "02_lstm_sentiment", "03_bert_classification"), 600),
                  (("01_word_embeddings", "02_lstm_sentiment", "03_bert_classification",
                    "04_transformers_from_scratch", "04b_sentiment_control"), 900)]
MAIN_NOTEBOOKS = ("01_word_embeddings", "02_lstm_sentiment", "03_bert_classification", "04_transformers_from_scratch")
# Issue #42, small preset: (notebooks that count, the most their time may be as a share of the baseline's, --baseline).
BASELINE_TARGETS = [(("03_bert_classification",), 0.33), (MAIN_NOTEBOOKS, 0.45)]
# Which framework does each notebook's heavy arithmetic (None: float32 by design, see docs/design-notes.md).
FRAMEWORK = {"01_word_embeddings": None, "02_lstm_sentiment": "tensorflow", "03_bert_classification": "torch",
             "03b_label_budget": "torch", "04_transformers_from_scratch": "torch", "04b_sentiment_control": "torch"}
PACKAGES = ("tensorflow", "keras", "torch", "transformers", "tokenizers", "gensim", "scikit-learn")
DOCS = ROOT / "docs"


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
    budget = cpu_budget()
    forced = os.environ.get(PRECISION_ENV)
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "usable_cpus": budget.usable, "cpu_limit": budget.describe(),
            "memory_gb": round(psutil.virtual_memory().total / GB, 1), "gpu": gpu, "platform": platform.platform(),
            "python": platform.python_version(), "forced_precision": forced if forced in ("float32", "bfloat16") else None,
            "packages": {name: _version(name) for name in PACKAGES}}


# what notebooks 02-04b print after timing: "training in float32", "computes in bfloat16", "trained in 95 s (float32)"
MEASURED = re.compile(r"(?:training in |computes in |trained in \d+ s \()(bfloat16|float32)")


def precision(notebook: str, gpu: str, executed: Path | None = None) -> str:
    """The precision the notebook chose: what it printed after timing both, else helpers.runtime's rule for its framework."""
    if executed is not None and executed.exists():
        outputs = json.loads(executed.read_text(encoding="utf-8"))["cells"]
        text = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                       for c in outputs for o in c.get("outputs", []))
        if found := MEASURED.findall(text):
            return f"{found[-1]} (timed)"
    framework = FRAMEWORK.get(notebook)
    if framework is None:
        return "float32"
    return "bfloat16" if bfloat16_choice(framework, gpu_bf16=gpu != "none")[0] else "float32"


def _limited(m: dict) -> bool:
    """Whether this machine description records fewer usable CPUs than cores (old descriptions record none)."""
    return m.get("usable_cpus") is not None and m["usable_cpus"] < m["cpu_count"]


def section_key(preset: str, m: dict) -> str:
    """Sections are merged by preset and machine: CPU model, core count (and usable CPUs where fewer) and GPU."""
    cpus = f"{m['usable_cpus']} of {m['cpu_count']}" if _limited(m) else f"{m['cpu_count']}"
    return f"{preset} | {cpus} x {m['cpu']} | GPU: {m['gpu']}"


def limit_reason(m: dict) -> str:
    """What limits the usable CPUs, from ``cpu_limit``, less what does not: ``cgroup quota 1``."""
    found = re.search(r"\((.*)\)$", m.get("cpu_limit") or "")
    parts = [p.strip() for p in re.split(r"[;,]", found.group(1))] if found else []
    return ", ".join(p for p in parts if p not in (f"affinity {m['cpu_count']}", "cgroup quota none"))


def machine_label(m: dict) -> str:
    """``2 × AMD EPYC``, or with a CPU limit ``1 usable CPU of 2 × AMD EPYC (cgroup quota 1)``."""
    if not _limited(m):
        return f"{m['cpu_count']} × {m['cpu']}"
    reason = limit_reason(m)
    usable = f"{m['usable_cpus']} usable CPU{'' if m['usable_cpus'] == 1 else 's'}"
    return f"{usable} of {m['cpu_count']} × {m['cpu']}" + (f" ({reason})" if reason else "")


def merge(store: dict, report: dict) -> dict:
    """Put this run's notebooks into its section of the store, keeping other sections and notebooks."""
    sections = store.setdefault("sections", {})
    key = section_key(report["preset"], report["machine"])
    section = sections.setdefault(key, {"preset": report["preset"], "notebooks": {}})
    section["machine"] = report["machine"]
    for entry in report["notebooks"]:
        section["notebooks"][entry["notebook"]] = entry
    section["notebooks"] = dict(sorted(section["notebooks"].items()))
    if report.get("baseline"):  # a new baseline replaces the section's; a run without one keeps it
        section["baseline"] = report["baseline"]
    store["sections"] = dict(sorted(sections.items()))
    return store


def series_label(names: tuple[str, ...]) -> str:
    """A series budget's label from its first and last notebook: ``01–04b in order``."""
    return f"{names[0].split('_')[0]}–{names[-1].split('_')[0]} in order"


BASELINE_FIELDS = ("seconds", "peak_gb", "returncode")


def load_baseline(path: Path, name: str, preset: str, m: dict) -> dict:
    """The bench report at ``path`` as a section's ``baseline``; SystemExit where it is unreadable or from elsewhere."""
    def refuse(why: str, fix: str) -> SystemExit:
        return SystemExit(f"--baseline {path}: {why}; {fix}")

    wanted = f"pass the build/bench-{preset}.json that the baseline commit's own bench wrote"
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise refuse(f"cannot be read as JSON ({err})", wanted) from None
    entries = report.get("notebooks") if isinstance(report, dict) else None
    if not entries or not isinstance(entries, list) or not all(
            isinstance(e, dict) and {"notebook", *BASELINE_FIELDS} <= e.keys() for e in entries):
        raise refuse("no notebooks with notebook, seconds, peak_gb and returncode", wanted)
    if report.get("preset") != preset:
        raise refuse(f"a {report.get('preset')} preset run, and this run is {preset}",
                     f"bench the baseline with --preset {preset}")
    theirs = report.get("machine") if isinstance(report.get("machine"), dict) else {}
    if (theirs.get("cpu"), theirs.get("cpu_count")) != (m["cpu"], m["cpu_count"]):
        raise refuse(f"it ran on {theirs.get('cpu_count')} × {theirs.get('cpu')}, this run on {m['cpu_count']} × {m['cpu']}",
                     "bench the baseline commit on this machine, in the same session, and pass its report")
    if theirs.get("usable_cpus") is not None and theirs["usable_cpus"] != m.get("usable_cpus"):
        raise refuse(f"it ran with {theirs['usable_cpus']} usable CPUs, this run with {m.get('usable_cpus')}",
                     "bench the baseline under the same CPU limit (the same cgroup) and pass its report")
    date = report.get("date") or min(str(e.get("date", "")) for e in entries)
    notebooks = {e["notebook"]: {k: e[k] for k in BASELINE_FIELDS} for e in sorted(entries, key=lambda e: e["notebook"])}
    return {"name": name, "date": str(date), "machine": theirs, "notebooks": notebooks}


def _ratio(now: float, then: float) -> float | None:
    """``now / then``, or None where the baseline took no time."""
    return now / then if then else None


def _baseline_seconds(entry: dict) -> str:
    """A run's whole seconds, marked where the notebook failed."""
    return f"{entry['seconds']:.0f}" + ("" if entry["returncode"] == 0 else " (failed)")


def baseline_lines(section: dict, when: str) -> list[str]:
    """Markdown lines: each notebook's time and peak memory against the section's baseline, then 01–04's total."""
    base = section.get("baseline")
    ours, theirs = section["notebooks"], (base or {}).get("notebooks", {})
    both = [n for n in ours if n in theirs]
    if not both:
        return []
    name = base["name"]
    md = ["", f"Against {name} (same machine; {name} run {base['date'][:10]}, this run {when}):", "",
          f"| notebook | {name} (s) | now (s) | ratio | {name} peak (GB) | now peak (GB) |", "|---|---|---|---|---|---|"]
    for n in both:
        then, now = theirs[n], ours[n]
        md.append(f"| {n} | {_baseline_seconds(then)} | {_baseline_seconds(now)} | "
                  f"{_fmt(_ratio(now['seconds'], then['seconds']), '.2f')} | {then['peak_gb']:.2f} | {now['peak_gb']:.2f} |")
    if all(n in both for n in MAIN_NOTEBOOKS):
        then_s, now_s = (sum(side[n]["seconds"] for n in MAIN_NOTEBOOKS) for side in (theirs, ours))
        ratio = _fmt(_ratio(now_s, then_s), ".2f")
        md.append(f"| {series_label(MAIN_NOTEBOOKS)} | {then_s:.0f} | {now_s:.0f} | {ratio} | – | – |")
    return md


def baseline_checks(section: dict) -> list[tuple[str, dict]]:
    """(label, check) for each of ``BASELINE_TARGETS`` whose notebooks the section and its baseline both have (small preset)."""
    base = section.get("baseline")
    if not base or section["preset"] != "small":
        return []
    checks = []
    for names, target in BASELINE_TARGETS:
        if not all(n in section["notebooks"] and n in base["notebooks"] for n in names):
            continue
        ratio = _ratio(*(sum(side[n]["seconds"] for n in names) for side in (section["notebooks"], base["notebooks"])))
        checks.append((names[0] if len(names) == 1 else series_label(names),
                       {"what": f"time ratio to {base['name']}", "value": ratio, "target": f"<= {target}",
                        "met": ratio is not None and ratio <= target}))
    return checks


ANSI = re.compile(r"\x1b\[[0-9;]*m")
PYTEST_SUMMARY = re.compile(r"^=+ (.*\d+ \w+.*) in ([\d.]+)s(?: \([\d:]+\))? =+$")
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")
RUN_EXIT = re.compile(r"^exit (\d+) after ([\d.]+) s$")
CI_COUNTS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")


def parse_ci_log(path: Path) -> dict:
    """Counts, pytest's seconds, exit code and total seconds from the output of ``python3 run.py test``; SystemExit if absent."""
    def refuse(why: str) -> SystemExit:
        return SystemExit(f"--record-ci {path}: {why}; pass the whole output of `python3 run.py test`")

    try:
        lines = [ANSI.sub("", line).strip() for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError as err:
        raise refuse(f"cannot be read ({err})") from None
    summary = next((m for line in reversed(lines) if (m := PYTEST_SUMMARY.match(line))), None)
    if summary is None:
        raise refuse("no pytest summary line such as '=== 832 passed, 2 skipped in 674.80s (0:11:14) ==='")
    counts = dict.fromkeys(CI_COUNTS, 0)
    for number, word in PYTEST_COUNT.findall(summary.group(1)):
        counts["errors" if word.startswith("error") else word] += int(number)
    finished = next((m for line in reversed(lines) if (m := RUN_EXIT.match(line))), None)
    if finished is None:
        raise refuse("no final line such as 'exit 0 after 764 s' (CI's wrapper writes it: echo \"exit $? after $SECONDS s\")")
    return {"counts": counts, "tests_seconds": float(summary.group(2)), "total_seconds": float(finished.group(2)),
            "exit": int(finished.group(1))}


def record_ci(path: Path, note: str | None) -> dict:
    """The store's ``ci`` entry for this log: its date (the log's), this machine's CPUs, what it reports and the note."""
    parsed = parse_ci_log(path)
    m = machine()
    return {"date": time.strftime("%Y-%m-%d", time.localtime(Path(path).stat().st_mtime)),
            "machine": {k: m.get(k) for k in ("cpu", "cpu_count", "usable_cpus", "cpu_limit")}, **parsed, "note": note}


def ci_lines(ci: dict) -> list[str]:
    """Markdown lines for CI's run of the README's test command: date, machine, counts, seconds, exit code, note."""
    counts = ", ".join(f"{n} {'error' if k == 'errors' and n == 1 else k}" for k in CI_COUNTS if (n := ci["counts"].get(k)))
    line = (f"{ci['date']}, {machine_label(ci['machine'])}: {counts or 'no tests'}; tests {ci['tests_seconds']:.0f} s, "
            f"{ci['total_seconds']:.0f} s in all (exit {ci['exit']}).")
    return ["## CI: the README's test command", "", line + (f" {ci['note']}" if ci.get("note") else ""), ""]


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


BUDGET_NOTEBOOK = "03b_label_budget"  # the notebook that records the label-budget rows
BUDGET_METHODS = ("TF-IDF + LR", "frozen MiniLM + LR", "MiniLM fine-tuned")  # notebook 03b's columns, in this order


def label_budget_table(entries: list[dict]) -> list[str]:
    """Markdown lines: test-subset accuracy per method (columns) and labelled reviews (rows), from the rows with
    ``budget_method`` of notebook 03b's entry (``BUDGET_NOTEBOOK``); other notebooks' rows are not read."""
    rows = [r for e in entries if e.get("notebook") == BUDGET_NOTEBOOK for r in e.get("rows", [])]
    found: dict[tuple[int, str], list[float]] = {}
    for r in rows:
        if r.get("budget_method") and r.get("labelled_reviews") and r.get("subset_accuracy") is not None:
            found[(int(r["labelled_reviews"]), r["budget_method"])] = [float(a) for a in r.get("draws") or [r["subset_accuracy"]]]
    if not found:
        return []
    methods = [m for m in BUDGET_METHODS if any(m == k[1] for k in found)]
    methods += sorted({m for _, m in found} - set(methods))

    def cell(accuracies: list[float] | None) -> str:
        if not accuracies:
            return "–"
        mean = 100 * sum(accuracies) / len(accuracies)
        if len(accuracies) == 1:
            return f"{mean:.1f} (1 run)"
        return f"{mean:.1f} ({100 * min(accuracies):.1f}–{100 * max(accuracies):.1f}, {len(accuracies)} draws)"

    md = ["", "Label budget (notebook 03b): test-subset accuracy (%) when every method trains on the same labelled reviews;",
          "mean of the draws (range, number of draws).", "",
          "| labelled reviews | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for n in sorted({n for n, _ in found}):
        md.append(f"| {n:,} | " + " | ".join(cell(found.get((n, m))) for m in methods) + " |")
    return md


def render(store: dict) -> str:
    """The whole of docs/benchmarks.md, from the store alone."""
    md = ["# Benchmarks", "",
          "Generated by `make bench` (`scripts/tools/bench.py`) from `docs/benchmarks.json`; do not edit by hand. Each section",
          "is one preset on one machine; a new run replaces its own notebooks' entries and keeps everything else. Times",
          "are wall-clock seconds for the whole notebook in a fresh kernel (data loading included); memory is the peak",
          "resident memory of the kernel's process tree. Shared machines vary by 10-70 % from run to run.", ""]
    for key, section in store.get("sections", {}).items():
        m, preset = section["machine"], section["preset"]
        entries = list(section["notebooks"].values())
        dates = sorted({e["date"][:10] for e in entries})
        when = dates[0] if len(dates) == 1 else dates[0] + " to " + dates[-1]
        forced = f"{m['forced_precision']} forced ({PRECISION_ENV}); " if m.get("forced_precision") else ""
        md += [f"## {preset.capitalize()} preset: {machine_label(m)}, GPU: {m['gpu']}", "",
               f"<!-- section: {key} -->",
               f"Run on {when}; {m['memory_gb']} GB RAM; {forced}"
               f"Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".", "",
               "| notebook | wall time (s) | peak memory (GB) | precision | result |", "|---|---|---|---|---|"]
        for e in entries:
            status = "ran" if e["returncode"] == 0 else "**FAILED**"
            md.append(f"| {e['notebook']} | {e['seconds']:.0f} | {e['peak_gb']:.2f} | {e['precision']} | {status} |")
        md += baseline_lines(section, when)
        series = [(names, budget) for names, budget in SERIES_TARGETS if preset == "small"
                  and all(n in section["notebooks"] for n in names)]
        checks = [(e["notebook"], c) for e in entries for c in e["checks"]]
        for names, budget in series:
            total = sum(section["notebooks"][n]["seconds"] for n in names)
            checks.append((series_label(names), {"what": "total wall time (s)", "value": total,
                                                 "target": f"<= {budget}", "met": total <= budget}))
        checks += baseline_checks(section)
        if checks:
            md += ["", "| notebook | measure | value | target | |", "|---|---|---|---|---|"]
            md += [f"| {nb} | {c['what']} | {_fmt(c['value'], '.4g')} | {c['target']} | {'met' if c['met'] else '**missed**'} |"
                   for nb, c in checks]
        md += ["", "| notebook | method | labelled reviews | pretrained on | subset acc. | test acc. | train s | "
               "parameters | ms/review |", "|---|---|---|---|---|---|---|---|---|"]
        for e in entries:
            for r in e["rows"]:
                if r.get("experiment") == "label budget":
                    continue  # tabulated by label budget below
                labelled = "not recorded" if r.get("labelled_reviews") is None else f"{r['labelled_reviews']:,}"
                md.append(f"| {e['notebook']} | {r['method']} | {labelled} | {r.get('pretraining') or 'not recorded'} | "
                          f"{_fmt(r.get('subset_accuracy'), '.3f')} | "
                          f"{_fmt(r.get('test_accuracy'), '.3f')} | {_fmt(r.get('train_seconds'), '.0f')} | "
                          f"{_fmt(r.get('n_params'), ',')} | {_fmt(r.get('ms_per_review'), '.2f')} |")
        for e in entries:
            md += lm_figures(e) + side_by_side_lines(e) + control_figures(e)
        md += seed_lines(entries)
        md += label_budget_table(entries)
        md.append("")
    if store.get("ci"):
        md += ci_lines(store["ci"])
    return "\n".join(md)


def update_docs(change: Callable[[dict], dict], docs: Path = DOCS) -> None:
    """Apply ``change`` to docs/benchmarks.json and re-render docs/benchmarks.md from it."""
    docs.mkdir(parents=True, exist_ok=True)
    path = docs / "benchmarks.json"
    store = change(json.loads(path.read_text(encoding="utf-8")) if path.exists() else {})
    path.write_text(json.dumps(store, indent=1, default=str) + "\n", encoding="utf-8")
    (docs / "benchmarks.md").write_text(render(store), encoding="utf-8")


def write_docs(report: dict, docs: Path = DOCS) -> None:
    """Merge a run into docs/benchmarks.json and re-render docs/benchmarks.md from it."""
    update_docs(lambda store: merge(store, report), docs)


def write_ci(ci: dict, docs: Path = DOCS) -> None:
    """Put CI's run into docs/benchmarks.json (``ci``, replacing the last) and re-render docs/benchmarks.md."""
    update_docs(lambda store: {**store, "ci": ci}, docs)


def copy_dir(out_dir: Path, seeds: list[int] | None, seed: int | None) -> Path:
    """Where a run's executed copy goes: ``out_dir`` for the first seed (the copy the book uses), else ``seed-N/``."""
    return out_dir if not seeds or seed == seeds[0] else out_dir / f"seed-{seed}"


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


def run_checks(name: str, preset: str, run: dict, rows: Rows) -> list[dict]:
    """This run's wall time, memory and metrics against the targets of (name, preset)."""
    checks = []
    if (name, preset) in RESOURCE_TARGETS:
        seconds, gb = RESOURCE_TARGETS[(name, preset)]
        checks += [("wall time (s)", run["seconds"], seconds, "<="), ("peak kernel memory (GB)", run["peak_gb"], gb, "<=")]
    for label, read, target in METRIC_TARGETS.get((name, preset), []):
        checks.append((label, read(rows), target, ">="))
    return [{"what": label, "value": value, "target": f"{op} {target}",
             "met": value is not None and (value <= target if op == "<=" else value >= target)}
            for label, value, target, op in checks]


SIDE_BY_SIDE_TARGET = ("GPT perplexity below nanoGPT's CPU recipe, same seconds (1 - GPT / recipe), worst seed", 0.10)


def run_side_by_side(seeds: list[int], env: dict[str, str]) -> dict:
    """Run scripts/experiments/gpt_side_by_side.py for these seeds; return its JSON (``runs``), or the error it printed."""
    out = ROOT / "build" / "gpt-side-by-side.json"
    script = ROOT / "scripts" / "experiments" / "gpt_side_by_side.py"
    proc = subprocess.run([sys.executable, str(script), "--seeds", *map(str, seeds), "--out", str(out)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"runs": [], "error": (proc.stdout + proc.stderr)[-2000:]}
    return json.loads(out.read_text(encoding="utf-8"))


def seed_list(text: str) -> list[int]:
    """``--seeds 42,0,7`` as [42, 0, 7]; anything else is refused with the form to use."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers: pass e.g. 42,0,7") from None


def notebook_paths(given: list[str]) -> list[Path]:
    """The notebooks to run: those given, else every notebook in notebooks/ in name order (04 before 04b)."""
    return [Path(p) for p in given] or sorted((ROOT / "notebooks").glob("*.ipynb"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=os.environ.get("DLNLP_PRESET", "small"), choices=("small", "full"))
    parser.add_argument("--seeds", type=seed_list,
                        help="comma-separated, e.g. 42,0,7: run each notebook once per seed (DLNLP_SEED)")
    parser.add_argument("--no-side-by-side", action="store_true", help="skip notebook 04's nanoGPT comparison")
    parser.add_argument("--baseline", type=Path, metavar="PATH",
                        help="the build/bench-<preset>.json that the baseline commit's bench wrote on this machine, same "
                             "CPU limit: the section shows time and memory against it and checks the time ratios")
    parser.add_argument("--baseline-name", default="baseline", metavar="NAME", help="what to call it, e.g. ff00e16")
    parser.add_argument("--record-ci", type=Path, metavar="LOG",
                        help="run no notebook: record the output of `python3 run.py test` as CI's time in docs/benchmarks.*")
    parser.add_argument("--ci-note", metavar="TEXT", help="a sentence to show after CI's line (with --record-ci)")
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: all, in order)")
    args = parser.parse_args()
    if args.ci_note is not None and args.record_ci is None:
        parser.error("--ci-note goes with --record-ci LOG")
    if args.baseline is None and args.baseline_name != "baseline":
        parser.error("--baseline-name names a --baseline PATH: pass both")
    if args.record_ci is not None:
        if args.notebooks or args.seeds or args.baseline:
            parser.error("--record-ci runs no notebook: pass no notebooks, --seeds or --baseline with it")
        ci = record_ci(args.record_ci, args.ci_note)
        write_ci(ci)
        print("\n".join(ci_lines(ci)) + "wrote docs/benchmarks.md and docs/benchmarks.json")
        return 0
    notebooks = notebook_paths(args.notebooks)
    out_dir = ROOT / "build" / f"bench-{args.preset}"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DLNLP_PRESET": args.preset,
           "KERAS_BACKEND": "tensorflow", "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    os.environ["DLNLP_PRESET"] = args.preset
    report = {"preset": args.preset, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "notebooks": []}
    m = report["machine"]
    print(f"== CPUs: {m['cpu_limit']}" + (f"; {m['forced_precision']} forced ({PRECISION_ENV})" if m["forced_precision"] else ""))
    if args.baseline is not None:
        report["baseline"] = load_baseline(args.baseline, args.baseline_name, args.preset, m)
        print(f"== against {args.baseline_name}: {args.baseline}, run {report['baseline']['date']}", flush=True)
        if _limited(m) and report["baseline"]["machine"].get("usable_cpus") is None:
            print(f"   note: {args.baseline} does not record its CPU limit: it must have run under this one ({m['cpu_limit']})")
    # this machine's speed, for the preflight's run-time estimate (scripts/tools/calibrate_estimate.py reads it)
    report["machine"]["speed_probe"] = probe()
    print("== speed probe: " + ", ".join(f"{k} {v}" for k, v in report["machine"]["speed_probe"].items()), flush=True)
    misses = 0
    for path in notebooks:
        name = path.stem
        entry: dict = {}
        for seed in args.seeds or [None]:
            started = time.strftime("%Y-%m-%dT%H:%M:%S")
            print(f"== {name} ({args.preset}{'' if seed is None else f', seed {seed}'})", flush=True)
            run_env = env if seed is None else {**env, "DLNLP_SEED": str(seed)}
            run = run_notebook(path, copy_dir(out_dir, args.seeds, seed), run_env)
            rows = [r for r in load_results() if r["notebook"] == name and r["preset"] == args.preset
                    and r.get("recorded_at", "") >= started]
            checks = run_checks(name, args.preset, run, rows)
            if run["returncode"] != 0:
                print(run["log_tail"])
            for c in checks:
                shown = "not recorded" if c["value"] is None else f"{c['value']:.4g}"
                print(f"  {'met ' if c['met'] else 'MISS'} {c['what']}: {shown} (target {c['target']})")
            for r in rows:
                print(f"  row: {r['method']}: subset {r.get('subset_accuracy')}, test {r.get('test_accuracy')}, "
                      f"train {r.get('train_seconds')} s, params {r.get('n_params')}")
            if not entry:  # the first seed's run is the notebook's entry
                executed = out_dir / path.name  # read only if this run wrote it
                fresh = executed.exists() and executed.stat().st_mtime >= time.time() - run["seconds"] - 5
                chosen = precision(name, report["machine"]["gpu"], executed if fresh else None)
                entry = {"notebook": name, "date": started, "precision": chosen,
                         **{k: v for k, v in run.items() if k != "log_tail"}, "rows": rows, "checks": checks}
            if seed is not None:
                entry.setdefault("seed_runs", []).append(
                    {"seed": seed, "returncode": run["returncode"], "checks": checks + [
                        {"what": "run", "value": run["returncode"], "target": "== 0", "met": run["returncode"] == 0}]})
        if name == "04_transformers_from_scratch" and args.preset == "small" and not args.no_side_by_side:
            print("== notebook 04's GPT against nanoGPT's CPU recipe (scripts/experiments/gpt_side_by_side.py)", flush=True)
            entry["side_by_side"] = run_side_by_side(args.seeds or [42, 0, 7], env)
            for r in entry["side_by_side"]["runs"]:
                print(f"  seed {r['seed']}: notebook GPT {r['notebook_gpt']['perplexity']}, "
                      f"recipe {r['nanogpt_recipe']['perplexity']} ({100 * r['notebook_vs_recipe']:+.0f} %)")
            label, target = SIDE_BY_SIDE_TARGET
            worst = _side_by_side_worst(entry)
            entry["checks"].append({"what": label, "value": worst, "target": f">= {target}",
                                    "met": worst is not None and worst >= target})
        misses += sum(not c["met"] for c in entry["checks"])
        report["notebooks"].append(entry)
    (ROOT / "build" / f"bench-{args.preset}.json").write_text(json.dumps(report, indent=1, default=str))
    write_docs(report)
    print(render({"sections": {"this run": {**report, "notebooks": {e["notebook"]: e for e in report["notebooks"]}}}}))
    print(f"\n{misses} target(s) missed; wrote docs/benchmarks.md, docs/benchmarks.json and build/bench-{args.preset}.json")
    failed = [e["notebook"] for e in report["notebooks"]
              if e["returncode"] != 0 or any(r["returncode"] != 0 for r in e.get("seed_runs", []))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
