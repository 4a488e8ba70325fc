"""Calibrate the preflight's run-time estimate from two bench runs of the same notebooks on one machine.

Usage: ``python scripts/tools/calibrate_estimate.py --two-cores A.json --one-cpu B.json [--out helpers/speed_reference.json]``.
A and B are ``build/bench-<preset>.json`` reports of ``make bench`` (copy each aside: the next run overwrites it): A on
2 cores, B on the same machine limited to one CPU (e.g. ``systemd-run --user --scope -p CPUQuota=100% make bench``, or
``taskset -c 0 make bench``), each with the machine's speed probe (``machine.speed_probe``, recorded by bench.py).
Per notebook, T_ref is A's seconds and the compute share is
w = clip((T_1cpu / T_2cores - 1) / (gemm_1cpu / gemm_2cores - 1), 0, 1): the part of the run that scales with the
matrix-product speed, the rest scaling with the Python speed (assumed unchanged by the CPU count).
``python -m helpers check`` then scales T_ref by this machine's probe against A's (``helpers.speed``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from helpers import speed  # noqa: E402

OUT = ROOT / "helpers" / "speed_reference.json"
MIN_GEMM_RATIO = 1.3  # one CPU must multiply matrices clearly slower than two, or w is noise
ABOUT = ("Reference for the run-time estimate of `python -m helpers check` (helpers.speed); written by "
         "scripts/tools/calibrate_estimate.py from two bench runs, do not edit by hand.")


class CalibrationError(ValueError):
    """The two reports cannot calibrate the estimate; the message says why and what to run."""


def read_report(path: Path, flag: str) -> dict:
    """A bench report (JSON) with a speed probe and notebooks, or a ``CalibrationError`` naming ``flag`` and the file."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"{flag} {path}: no such file; pass a build/bench-small.json that `make bench` wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CalibrationError(f"{flag} {path}: not a readable JSON bench report ({err})") from None
    if not isinstance(report, dict) or not isinstance(report.get("notebooks"), list) or not report["notebooks"]:
        raise CalibrationError(f"{flag} {path}: not a bench report with notebooks (build/bench-<preset>.json of `make bench`)")
    found = (report.get("machine") or {}).get("speed_probe")
    if not isinstance(found, dict):
        raise CalibrationError(f"{flag} {path}: the machine has no speed_probe; it was written by a bench.py without the "
                               "probe: run `make bench` again")
    for key in ("python_s", "gemm_s"):
        value = found.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise CalibrationError(f"{flag} {path}: machine.speed_probe.{key} must be a positive number, got {value!r}")
    return report


def _runs(report: dict, path: Path, flag: str) -> dict[str, dict]:
    """The report's notebook entries by name, each one that ran (return code 0) in float32."""
    runs = {}
    for entry in report["notebooks"]:
        name = entry.get("notebook", "?")
        if entry.get("returncode") != 0:
            raise CalibrationError(f"{flag} {path}: notebook {name} failed (return code {entry.get('returncode')}); "
                                   "fix it and run the bench again")
        if not str(entry.get("precision", "float32")).startswith("float32"):
            raise CalibrationError(f"{flag} {path}: notebook {name} ran in {entry['precision']}, and the estimate is "
                                   "for float32; run the bench with DLNLP_PRECISION=float32")
        seconds = entry.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise CalibrationError(f"{flag} {path}: notebook {name} has no positive seconds, got {seconds!r}")
        runs[name] = entry
    return runs


def _machine_text(m: dict) -> str:
    return f"{m.get('cpu_count', '?')} x {m.get('cpu', '?')}, GPU: {m.get('gpu', '?')}, Python {m.get('python', '?')}"


def calibrate(two_cores: dict, one_cpu: dict, two_path: Path = Path("A"), one_path: Path = Path("B")) -> dict:
    """The reference the estimate reads: A's probe, and per notebook A's seconds and the compute share from A and B."""
    a = _runs(two_cores, two_path, "--two-cores")
    b = _runs(one_cpu, one_path, "--one-cpu")
    if missing := sorted(set(a) ^ set(b)):
        name = missing[0]
        where, other = (f"--two-cores {two_path}", f"--one-cpu {one_path}") if name in a else \
            (f"--one-cpu {one_path}", f"--two-cores {two_path}")
        raise CalibrationError(f"notebook {name} is in {where} but missing from {other}: run the same notebooks in both")
    if two_cores.get("preset") != one_cpu.get("preset"):
        raise CalibrationError(f"the runs are of different presets ({two_cores.get('preset')!r} and "
                               f"{one_cpu.get('preset')!r}): run both with the same preset")
    ma, mb = two_cores["machine"], one_cpu["machine"]
    pa, pb = ma["speed_probe"], mb["speed_probe"]
    if ma.get("cpu") != mb.get("cpu"):
        raise CalibrationError(f"the runs come from different CPUs ({ma.get('cpu')!r} and {mb.get('cpu')!r}): run both "
                               "on one machine")
    gemm_ratio = pb["gemm_s"] / pa["gemm_s"]
    if not pb.get("cpus", 1) < pa.get("cpus", 2) or gemm_ratio < MIN_GEMM_RATIO:
        raise CalibrationError(f"--one-cpu {one_path} does not look limited to one CPU: its probe saw {pb.get('cpus')} "
                               f"CPUs (against {pa.get('cpus')}) and multiplied matrices {gemm_ratio:.2f}x as slowly "
                               f"(at least {MIN_GEMM_RATIO} expected); run it under a one-CPU quota or affinity")
    notebooks = {}
    for name in sorted(a):
        t2, t1 = float(a[name]["seconds"]), float(b[name]["seconds"])
        notebooks[name] = {"seconds": t2, "compute_share": round(speed.compute_share(t1 / t2, gemm_ratio), 3),
                           "one_cpu_seconds": t1, "precision": a[name].get("precision", "float32")}
    return {"about": ABOUT, "preset": two_cores.get("preset"), "machine": _machine_text(ma),
            "two_cores_run": two_cores.get("date"), "one_cpu_run": one_cpu.get("date"),
            "probe": dict(pa), "one_cpu_probe": dict(pb), "notebooks": notebooks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--two-cores", type=Path, required=True, help="bench report of the run on 2 cores")
    parser.add_argument("--one-cpu", type=Path, required=True, help="bench report of the run limited to one CPU")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the reference (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    try:
        reference = calibrate(read_report(args.two_cores, "--two-cores"), read_report(args.one_cpu, "--one-cpu"),
                              args.two_cores, args.one_cpu)
    except CalibrationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    speed.check_reference(reference, str(args.out))
    args.out.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")
    print(f"{'notebook':32} {'2 cores (s)':>12} {'1 CPU (s)':>10} {'w':>6}")
    for name, e in reference["notebooks"].items():
        print(f"{name:32} {e['seconds']:12.0f} {e['one_cpu_seconds']:10.0f} {e['compute_share']:6.2f}")
    ratio = reference["one_cpu_probe"]["gemm_s"] / reference["probe"]["gemm_s"]
    print(f"matrix products {ratio:.2f}x as slow on one CPU; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
