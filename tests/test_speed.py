"""The preflight's run-time estimate: the probe, the model, the calibration from two bench runs, and the check's line."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import helpers.check as check
import helpers.runtime as runtime
import helpers.speed as speed

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


calibrate_estimate = _load("calibrate_estimate")
NOTEBOOKS = ("01_word_embeddings", "02_lstm_sentiment", "03_bert_classification")


def _reference(seconds: dict[str, float], shares: dict[str, float], python_s: float = 0.2, gemm_s: float = 0.3) -> dict:
    return {"preset": "small", "machine": "2 x Test CPU", "probe": {"python_s": python_s, "gemm_s": gemm_s, "cpus": 2},
            "notebooks": {n: {"seconds": seconds[n], "compute_share": shares[n]} for n in seconds}}


# --- the model ------------------------------------------------------------------------------------------------------

def test_estimate_scales_with_python_at_w0_and_with_gemm_at_w1() -> None:
    ref = _reference({"a": 100.0, "b": 100.0, "c": 100.0}, {"a": 0.0, "b": 1.0, "c": 0.5}, python_s=1.0, gemm_s=1.0)
    here = {"python_s": 2.0, "gemm_s": 3.0, "cpus": 1}
    assert speed.expected_seconds(ref, here) == pytest.approx({"a": 200.0, "b": 300.0, "c": 250.0})
    same = speed.expected_seconds(ref, {"python_s": 1.0, "gemm_s": 1.0})
    assert same == pytest.approx({"a": 100.0, "b": 100.0, "c": 100.0})  # the reference machine predicts its own times


def test_estimate_refuses_a_bad_probe_or_reference() -> None:
    ref = _reference({"a": 100.0}, {"a": 0.5})
    with pytest.raises((TypeError, ValueError), match=r"here\['gemm_s'\]"):
        speed.expected_seconds(ref, {"python_s": 1.0})
    with pytest.raises(TypeError, match="here"):
        speed.expected_seconds(ref, [1.0, 2.0])
    with pytest.raises(speed.SpeedReferenceError, match="compute_share"):
        speed.expected_seconds(_reference({"a": 100.0}, {"a": 1.5}), {"python_s": 1.0, "gemm_s": 1.0})
    with pytest.raises(speed.SpeedReferenceError, match="probe"):
        speed.check_reference({"notebooks": {"a": {"seconds": 1, "compute_share": 0}}})


@pytest.mark.parametrize(("seconds_ratio", "gemm_ratio", "share"),
                         [(1.5, 2.0, 0.5), (1.0, 2.0, 0.0), (2.0, 2.0, 1.0), (3.0, 2.0, 1.0), (0.9, 2.0, 0.0)])
def test_compute_share_is_clipped_to_0_1(seconds_ratio: float, gemm_ratio: float, share: float) -> None:
    assert speed.compute_share(seconds_ratio, gemm_ratio) == pytest.approx(share)


@pytest.mark.parametrize("gemm_ratio", [1.0, 0.5, float("nan"), "2"])
def test_compute_share_refuses_a_gemm_ratio_not_above_1(gemm_ratio: object) -> None:
    with pytest.raises((TypeError, ValueError), match="gemm_ratio"):
        speed.compute_share(1.5, gemm_ratio)


# --- the probe ------------------------------------------------------------------------------------------------------

def test_probe_times_both_workloads_within_its_budget() -> None:
    start = time.perf_counter()
    found = speed.probe(budget_s=2.0)
    elapsed = time.perf_counter() - start
    assert found["python_s"] > 0 and found["gemm_s"] > 0 and found["cpus"] == runtime.usable_cpus()
    assert elapsed < 2 * 2.0 + 2 * (found["python_s"] + found["gemm_s"]), f"the probe took {elapsed:.1f} s"


def test_probe_repeats_only_while_the_budget_lasts() -> None:
    calls: list[int] = []
    assert speed._best(lambda: calls.append(1), deadline=time.perf_counter() - 1) >= 0 and len(calls) == 1
    calls.clear()
    speed._best(lambda: calls.append(1), deadline=time.perf_counter() + 60)
    assert len(calls) == speed.REPEATS


@pytest.mark.parametrize("budget", [0, -1.0, float("inf"), "3", None])
def test_probe_refuses_a_bad_budget(budget: object) -> None:
    with pytest.raises((TypeError, ValueError), match="budget_s"):
        speed.probe(budget_s=budget)


def test_probe_workloads_are_fixed() -> None:
    assert speed._corpus() == speed._corpus() and len(speed._corpus()) == speed._TEXTS
    assert speed._python_work() == speed._python_work() > 1000  # the same vocabulary every time


# --- the calibration ------------------------------------------------------------------------------------------------

def _bench_report(seconds: dict[str, float], cpus: int, gemm_s: float, python_s: float = 0.2,
                  failed: tuple[str, ...] = (), probe: bool = True) -> dict:
    machine = {"cpu": "Test CPU", "cpu_count": 2, "gpu": "none", "python": "3.11.7"}
    if probe:
        machine["speed_probe"] = {"python_s": python_s, "gemm_s": gemm_s, "cpus": cpus}
    return {"preset": "small", "date": "run date", "machine": machine,
            "notebooks": [{"notebook": n, "seconds": s, "returncode": 1 if n in failed else 0, "precision": "float32"}
                          for n, s in seconds.items()]}


TWO = {"01_word_embeddings": 80.0, "02_lstm_sentiment": 150.0, "03_bert_classification": 300.0}
ONE = {"01_word_embeddings": 100.0, "02_lstm_sentiment": 135.0, "03_bert_classification": 900.0}


def test_calibration_computes_each_compute_share() -> None:
    reference = calibrate_estimate.calibrate(_bench_report(TWO, 2, 0.25), _bench_report(ONE, 1, 0.5))
    shares = {n: e["compute_share"] for n, e in reference["notebooks"].items()}
    assert shares == pytest.approx({"01_word_embeddings": 0.25,  # (100/80 - 1) / (0.5/0.25 - 1)
                                    "02_lstm_sentiment": 0.0,  # faster on one CPU (noise): clipped to 0
                                    "03_bert_classification": 1.0})  # 3x slower, more than the matrix products: 1
    assert {n: e["seconds"] for n, e in reference["notebooks"].items()} == TWO
    assert reference["probe"]["gemm_s"] == 0.25 and "Test CPU" in reference["machine"]
    assert speed.check_reference(reference) is reference


def test_calibration_round_trip_feeds_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "speed_reference.json"
    a.write_text(json.dumps(_bench_report(TWO, 2, 0.25)))
    b.write_text(json.dumps(_bench_report(ONE, 1, 0.5)))
    assert calibrate_estimate.main(["--two-cores", str(a), "--one-cpu", str(b), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    # the reference machine's own probe predicts the 2-core times: 80 s + 150 s + 300 s
    item, = check.check_run_time(lambda: {"python_s": 0.2, "gemm_s": 0.25, "cpus": 2}, out)
    assert item.status == "OK" and "01 1.3 min, 02 2.5 min, 03 5.0 min; series 9 min" in item.detail


@pytest.mark.parametrize(("two", "one", "words"), [
    (_bench_report(TWO, 2, 0.25), _bench_report({**ONE, "03_bert_classification": 0}, 1, 0.5), ["03_bert", "seconds"]),
    (_bench_report(TWO, 2, 0.25), _bench_report({"01_word_embeddings": 100.0}, 1, 0.5), ["02_lstm", "missing from", "--one-cpu"]),
    (_bench_report({"01_word_embeddings": 80.0}, 2, 0.25), _bench_report(ONE, 1, 0.5),
     ["02_lstm", "missing from", "--two-cores"]),
    (_bench_report(TWO, 2, 0.25, failed=("02_lstm_sentiment",)), _bench_report(ONE, 1, 0.5), ["02_lstm", "failed"]),
    (_bench_report(TWO, 2, 0.25), _bench_report(ONE, 1, 0.5, failed=("01_word_embeddings",)), ["01_word", "failed", "--one-cpu"]),
    (_bench_report(TWO, 2, 0.25), _bench_report(ONE, 2, 0.26), ["one CPU", "1.04x"]),
])
def test_calibration_refuses_what_it_cannot_use(two: dict, one: dict, words: list[str]) -> None:
    with pytest.raises(calibrate_estimate.CalibrationError) as err:
        calibrate_estimate.calibrate(two, one)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_calibration_refuses_a_report_without_the_probe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "ref.json"
    a.write_text(json.dumps(_bench_report(TWO, 2, 0.25)))
    b.write_text(json.dumps(_bench_report(ONE, 1, 0.5, probe=False)))
    assert calibrate_estimate.main(["--two-cores", str(a), "--one-cpu", str(b), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "--one-cpu" in error and "speed_probe" in error and "make bench" in error and not out.exists()
    assert calibrate_estimate.main(["--two-cores", str(tmp_path / "none.json"), "--one-cpu", str(b), "--out", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err


def test_bench_records_the_probe_in_its_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _load("bench")
    fake = {"python_s": 0.2, "gemm_s": 0.25, "cpus": 2}
    monkeypatch.setenv("DLNLP_PRESET", "small")  # bench.main sets it; monkeypatch restores it
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    monkeypatch.setattr(bench, "probe", lambda: dict(fake))
    monkeypatch.setattr(bench, "run_notebook", lambda path, out_dir, env: {"seconds": 1.0, "peak_gb": 0.1,
                                                                            "returncode": 0, "log_tail": ""})
    monkeypatch.setattr(bench, "load_results", lambda: [])
    monkeypatch.setattr(bench, "write_docs", lambda report: None)
    monkeypatch.setattr(sys, "argv", ["bench.py", "--preset", "small", str(tmp_path / "01_word_embeddings.ipynb")])
    assert bench.main() == 0
    report = json.loads((tmp_path / "build" / "bench-small.json").read_text())
    assert report["machine"]["speed_probe"] == fake and report["notebooks"][0]["seconds"] == 1.0


# --- the preflight's line -------------------------------------------------------------------------------------------

def _write(tmp_path: Path, reference: object) -> Path:
    path = tmp_path / "speed_reference.json"
    path.write_text(json.dumps(reference))
    return path


def test_check_prints_each_notebooks_minutes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.PRECISION_ENV, "float32")
    path = _write(tmp_path, _reference(dict(zip(NOTEBOOKS, (78.0, 144.0, 300.0), strict=True)), dict.fromkeys(NOTEBOOKS, 0.5)))
    item, = check.check_run_time(lambda: {"python_s": 0.2, "gemm_s": 0.3, "cpus": 2}, path)
    assert item.status == "OK" and item.name == "run time"
    assert item.detail == ("expected on this machine (small preset, 2 CPUs, float32): 01 1.3 min, 02 2.4 min, "
                           "03 5.0 min; series 9 min")
    slower, = check.check_run_time(lambda: {"python_s": 0.3, "gemm_s": 0.45, "cpus": 1}, path)  # 1.5x as slow: 13 min
    assert slower.status == "OK" and "(small preset, 1 CPU, float32)" in slower.detail and "series 13 min" in slower.detail


def test_check_warns_when_the_series_or_a_notebook_is_long(tmp_path: Path) -> None:
    path = _write(tmp_path, _reference(dict(zip(NOTEBOOKS, (78.0, 144.0, 300.0), strict=True)), dict.fromkeys(NOTEBOOKS, 1.0)))
    item, = check.check_run_time(lambda: {"python_s": 0.2, "gemm_s": 0.3 * 1.7, "cpus": 1}, path)  # 03: 8.5 min
    assert item.status == "WARN" and "03 8.5 min" in item.detail and "notebook 03 over 8 min" in item.fix
    item, = check.check_run_time(lambda: {"python_s": 0.2, "gemm_s": 0.3 * 2.6, "cpus": 1}, path)  # 23 min in all
    assert item.status == "WARN" and "notebook 03" in item.fix
    long = _write(tmp_path, _reference({f"0{i}_x": 450.0 for i in range(1, 5)}, {f"0{i}_x": 0.0 for i in range(1, 5)}))
    item, = check.check_run_time(lambda: {"python_s": 0.2, "gemm_s": 0.3, "cpus": 2}, long)  # 4 x 7.5 min
    assert item.status == "WARN" and "series 30 min" in item.detail and "over 20 min in all" in item.fix


def test_check_lists_bonus_notebooks_apart_from_the_series(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.PRECISION_ENV, "float32")
    names = (*NOTEBOOKS, "03b_budget", "04b_control")
    seconds = dict(zip(names, (78.0, 144.0, 300.0, 240.0, 30.0), strict=True))
    path = _write(tmp_path, _reference(seconds, dict.fromkeys(names, 0.5)))
    item, = check.check_run_time(lambda: {"python_s": 0.2, "gemm_s": 0.3, "cpus": 2}, path)
    assert item.detail.endswith("03 5.0 min; series 9 min; bonus notebooks 03b 4.0 min, 04b 0.5 min")


def test_check_mentions_bfloat16_where_the_notebooks_may_use_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, _reference({"03_bert": 300.0}, {"03_bert": 0.5}))
    monkeypatch.setenv(runtime.PRECISION_ENV, "bfloat16")
    item, = check.check_run_time(lambda: {"python_s": 0.2, "gemm_s": 0.3, "cpus": 2}, path)
    assert "float32" in item.detail and "bfloat16" in item.detail and "PyTorch" in item.detail and "faster" in item.detail


@pytest.mark.parametrize("content", [None, "{not json", json.dumps([1, 2]), json.dumps({"probe": {"python_s": 1}}),
                                     json.dumps(_reference({"a": 60.0}, {"a": 2.0}))])
def test_check_without_a_usable_reference_warns(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "speed_reference.json"
    if content is not None:
        path.write_text(content)

    def never() -> dict[str, float]:
        raise AssertionError("no probe without a reference")

    item, = check.check_run_time(never, path)
    assert item.status == "WARN" and "no estimate" in item.detail and str(path) in item.detail
    assert "make bench" in item.fix and "calibrate_estimate.py" in item.fix


def test_check_survives_a_failing_probe(tmp_path: Path) -> None:
    path = _write(tmp_path, _reference({"a": 60.0}, {"a": 0.5}))

    def broken() -> dict[str, float]:
        raise ValueError("DLNLP_THREADS='x' is not a whole number")

    item, = check.check_run_time(broken, path)
    assert item.status == "WARN" and "DLNLP_THREADS" in item.detail


def test_the_run_time_check_is_part_of_the_preflight() -> None:
    assert check.check_run_time in check.CHECKS


def test_the_preflight_imports_no_deep_learning_framework(tmp_path: Path) -> None:
    path = _write(tmp_path, _reference({"03_bert": 300.0}, {"03_bert": 0.5}))
    code = ("import sys, helpers.check as c, helpers.speed as s; "
            f"item, = c.check_run_time(lambda: s.probe(0.05), {str(path)!r}); assert 'series' in item.detail, item; "
            "print(sorted({'torch', 'tensorflow', 'keras', 'transformers'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_reference_ships_with_the_package() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch("speed_reference.json", p) for p in patterns["helpers"])
    assert speed.REFERENCE == ROOT / "helpers" / "speed_reference.json"
