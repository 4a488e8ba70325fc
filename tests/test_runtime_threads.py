"""The CPUs the process may use (affinity, cgroup v1 and v2 quotas, $DLNLP_THREADS) and the thread pools sized to them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import helpers.runtime as runtime

ROOT = Path(__file__).resolve().parents[1]
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
# Every variable that decides the thread counts: cleared so each test (and child process) starts from none.
THREAD_VARS = (runtime.THREADS_ENV, runtime.THREADS_SET_ENV, *runtime.THREAD_ENV_VARS)


def _tree(root: Path, files: dict[str, str]) -> Path:
    """A fake filesystem under ``root``: each path (relative, like ``proc/self/cgroup``) holding its text."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(autouse=True)
def no_thread_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No $DLNLP_THREADS or thread variables from the test process's own `import helpers`; restored afterwards."""
    for name in THREAD_VARS:
        monkeypatch.setenv(name, "")  # recorded first, so whatever limit_threads writes is undone after the test
        monkeypatch.delenv(name)


def test_cgroup_v2_quota_is_read_from_the_process_own_cgroup(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/kubepods/pod1/box\n", "proc/self/mountinfo": V2_MOUNTINFO,
                            "sys/fs/cgroup/kubepods/pod1/box/cpu.max": "150000 100000\n"})
    assert runtime.cgroup_cpu_quota(root) == 1.5
    assert runtime.usable_cpus(root, affinity=64) == 2  # 1.5 CPUs of time keep 2 threads busy
    assert runtime.usable_cpus(root, affinity=1) == 1  # affinity 1 wins over a larger quota


def test_cgroup_v2_nested_limits_take_the_smallest(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/a/b/c\n", "proc/self/mountinfo": V2_MOUNTINFO,
                            "sys/fs/cgroup/a/cpu.max": "400000 100000\n", "sys/fs/cgroup/a/b/cpu.max": "50000 100000\n",
                            "sys/fs/cgroup/a/b/c/cpu.max": "max 100000\n"})
    assert runtime.cgroup_cpu_quota(root) == 0.5
    assert runtime.usable_cpus(root, affinity=16) == 1  # half a CPU still runs one thread


def test_cgroup_v2_without_a_limit_and_without_mountinfo(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/user.slice\n", "sys/fs/cgroup/user.slice/cpu.max": "max 100000\n"})
    assert runtime.cgroup_cpu_quota(root) is None and runtime.usable_cpus(root, affinity=6) == 6
    (root / "sys/fs/cgroup/user.slice/cpu.max").write_text("200000 100000\n")  # the usual layout is assumed
    assert runtime.usable_cpus(root, affinity=6) == 2


def test_cgroup_v2_in_a_namespace_reads_the_mounted_folder(tmp_path: Path) -> None:
    # A container with its own cgroup namespace: the process is at "/", and its limit is on the mounted folder.
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/\n", "proc/self/mountinfo": V2_MOUNTINFO,
                            "sys/fs/cgroup/cpu.max": "100000 100000\n"})
    assert runtime.usable_cpus(root, affinity=96) == 1
    (root / "proc/self/cgroup").write_text("0::/../../elsewhere\n")  # outside the namespace: the mount is all we see
    assert runtime.usable_cpus(root, affinity=96) == 1


def test_cgroup_v2_hybrid_layout_from_mountinfo(tmp_path: Path) -> None:
    mountinfo = ("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                 "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    root = _tree(tmp_path, {"proc/self/cgroup": "1:cpu:/\n0::/job\n", "proc/self/mountinfo": mountinfo,
                            "sys/fs/cgroup/unified/job/cpu.max": "300000 100000\n"})
    assert runtime.cgroup_cpu_quota(root) == 3.0


def test_cgroup_v1_quota_with_a_mount_root_as_in_docker(tmp_path: Path) -> None:
    mountinfo = ("31 23 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
                 "33 31 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n"
                 "34 31 0:31 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n")
    root = _tree(tmp_path, {"proc/self/cgroup": "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
                            "proc/self/mountinfo": mountinfo,
                            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "100000\n",
                            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert runtime.cgroup_cpu_quota(root) == 1.0
    assert runtime.usable_cpus(root, affinity=32) == 1


def test_cgroup_v1_nested_and_unlimited(tmp_path: Path) -> None:
    base = "sys/fs/cgroup/cpu"
    root = _tree(tmp_path, {"proc/self/cgroup": "3:cpu:/outer/inner\n",  # no mountinfo: the usual layout
                            f"{base}/cpu.cfs_quota_us": "-1\n", f"{base}/cpu.cfs_period_us": "100000\n",
                            f"{base}/outer/cpu.cfs_quota_us": "250000\n", f"{base}/outer/cpu.cfs_period_us": "100000\n",
                            f"{base}/outer/inner/cpu.cfs_quota_us": "-1\n",
                            f"{base}/outer/inner/cpu.cfs_period_us": "100000\n"})
    assert runtime.cgroup_cpu_quota(root) == 2.5 and runtime.usable_cpus(root, affinity=8) == 3
    (root / base / "outer/cpu.cfs_quota_us").write_text("-1\n")
    assert runtime.cgroup_cpu_quota(root) is None and runtime.usable_cpus(root, affinity=8) == 8


def test_cgroup_v1_and_v2_together_take_the_smaller(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "2:cpu:/job\n0::/job\n",
                            "sys/fs/cgroup/job/cpu.max": "400000 100000\n",
                            "sys/fs/cgroup/cpu/job/cpu.cfs_quota_us": "200000\n",
                            "sys/fs/cgroup/cpu/job/cpu.cfs_period_us": "100000\n"})
    assert runtime.cgroup_cpu_quota(root) == 2.0


def test_no_cgroup_files_at_all_means_the_affinity(tmp_path: Path) -> None:
    assert runtime.cgroup_cpu_quota(tmp_path) is None  # macOS, Windows, or /proc not mounted
    assert runtime.usable_cpus(tmp_path, affinity=4) == 4
    budget = runtime.cpu_budget(tmp_path, affinity=4)
    assert budget.quota is None and budget.override is None and "affinity 4, cgroup quota none" in budget.describe()


@pytest.mark.parametrize("cpu_max", ["garbage\n", "\xff\xfe\n", "100000 0\n", "-5 100000\n", "", None])
def test_unreadable_or_garbled_files_fall_back_to_the_affinity(tmp_path: Path, cpu_max: str | None) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/job\n", "proc/self/mountinfo": V2_MOUNTINFO})
    target = root / "sys/fs/cgroup/job/cpu.max"
    target.parent.mkdir(parents=True)
    if cpu_max is None:
        target.mkdir()  # reading a folder fails whoever we are (root reads files whatever their permissions)
    else:
        target.write_bytes(cpu_max.encode("latin-1"))
    assert runtime.cgroup_cpu_quota(root) is None and runtime.usable_cpus(root, affinity=3) == 3


@pytest.mark.parametrize("broken", ["proc/self/cgroup", "proc/self/mountinfo"])
def test_unreadable_proc_files_never_crash(tmp_path: Path, broken: str) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/job\n", "proc/self/mountinfo": V2_MOUNTINFO + "short line\n",
                            "sys/fs/cgroup/job/cpu.max": "100000 100000\n"})
    (root / broken).unlink()
    (root / broken).mkdir()
    assert runtime.usable_cpus(root, affinity=3) == (3 if broken == "proc/self/cgroup" else 1)


def test_mountinfo_escapes_are_decoded(tmp_path: Path) -> None:
    mountinfo = "41 31 0:38 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/\n", "proc/self/mountinfo": mountinfo,
                            "sys/fs/my cgroup/cpu.max": "100000 100000\n"})
    assert runtime.cgroup_cpu_quota(root) == 1.0


def test_dlnlp_threads_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "100000 100000\n"})
    monkeypatch.setenv(runtime.THREADS_ENV, " 3 ")
    budget = runtime.cpu_budget(root, affinity=64)
    assert budget.usable == 3 and budget.override == 3 and budget.quota == 1.0  # the learner knows better
    assert budget.describe() == "3 usable of 64 cores (DLNLP_THREADS=3; affinity 64, cgroup quota 1)"
    monkeypatch.setenv(runtime.THREADS_ENV, "")  # blank: as if unset
    assert runtime.usable_cpus(root, affinity=64) == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_dlnlp_threads_must_be_a_whole_number_from_one(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(runtime.THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"DLNLP_THREADS='{value}' is not a whole number of threads >= 1.*unset it"):
        runtime.usable_cpus()


def test_this_machine_has_at_least_one_usable_cpu() -> None:
    budget = runtime.cpu_budget()
    assert 1 <= budget.usable <= budget.cores and budget.usable <= budget.affinity
    assert "usable of" in runtime.environment_report(packages=())


class _Recorder(types.ModuleType):
    """A stand-in for torch or TensorFlow that records the thread counts it is given."""

    def __init__(self, name: str, fail: bool = False) -> None:
        super().__init__(name)
        self.calls: list[tuple[str, int]] = []
        self.fail = fail

    def record(self, what: str) -> Callable[[int], None]:
        def setter(n: int) -> None:
            if self.fail:
                raise RuntimeError(f"{what} cannot be modified after initialization")
            self.calls.append((what, n))

        return setter


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> tuple[_Recorder, _Recorder]:
    """limit_threads as in a new process, with fake torch and TensorFlow modules already imported."""
    monkeypatch.setattr(runtime, "_threads", None)
    monkeypatch.setattr(runtime, "_threads_applied", set())
    torch = _Recorder("torch")
    torch.set_num_threads, torch.set_num_interop_threads = torch.record("intra"), torch.record("inter")
    tf = _Recorder("tensorflow")
    tf.config = types.SimpleNamespace(threading=types.SimpleNamespace(
        set_intra_op_parallelism_threads=tf.record("intra"), set_inter_op_parallelism_threads=tf.record("inter")))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    return torch, tf


def test_limit_threads_sets_everything_once(fresh_process: tuple[_Recorder, _Recorder],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    torch, tf = fresh_process
    monkeypatch.setenv(runtime.THREADS_ENV, "3")
    assert runtime.limit_threads() == 3
    assert {name: os.environ[name] for name in runtime.THREAD_ENV_VARS} == dict.fromkeys(runtime.THREAD_ENV_VARS, "3")
    assert torch.calls == [("intra", 3), ("inter", 3)] and tf.calls == [("intra", 3), ("inter", 3)]
    monkeypatch.setenv(runtime.THREADS_ENV, "5")  # set once per process: later calls change nothing
    assert runtime.limit_threads() == 3 and os.environ["OMP_NUM_THREADS"] == "3"
    assert len(torch.calls) == 2 and len(tf.calls) == 2


def test_limit_threads_keeps_a_learners_own_settings(fresh_process: tuple[_Recorder, _Recorder],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    torch, tf = fresh_process
    monkeypatch.setenv(runtime.THREADS_ENV, "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "4")
    assert runtime.limit_threads() == 3
    assert os.environ["OMP_NUM_THREADS"] == "5" and os.environ["TF_NUM_INTRAOP_THREADS"] == "4"
    assert os.environ["MKL_NUM_THREADS"] == "3" and os.environ["TF_NUM_INTEROP_THREADS"] == "3"
    assert torch.calls == [("intra", 5), ("inter", 3)] and tf.calls == [("intra", 4), ("inter", 3)]


def test_limit_threads_recomputes_what_a_parent_process_set(fresh_process: tuple[_Recorder, _Recorder],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.THREADS_ENV, "1")  # this process's own answer (say, a one-CPU cgroup)
    monkeypatch.setenv(runtime.THREADS_SET_ENV, "8")  # a parent's helpers wrote 8 ...
    monkeypatch.setenv("OMP_NUM_THREADS", "8")  # ... here, which this process recomputes
    monkeypatch.setenv("MKL_NUM_THREADS", "6")  # the learner's own: kept
    assert runtime.limit_threads() == 1
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "6"
    assert os.environ[runtime.THREADS_SET_ENV] == "1"


def test_limit_threads_applies_frameworks_imported_later(fresh_process: tuple[_Recorder, _Recorder],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    torch, tf = fresh_process
    monkeypatch.setenv(runtime.THREADS_ENV, "2")
    monkeypatch.delitem(sys.modules, "tensorflow")  # as at `import helpers`, before the notebook imports TensorFlow
    runtime.limit_threads()
    late_tf = _Recorder("tensorflow", fail=True)  # imported later, and already started: its setters refuse
    late_tf.config = types.SimpleNamespace(threading=types.SimpleNamespace(
        set_intra_op_parallelism_threads=late_tf.record("intra"),
        set_inter_op_parallelism_threads=late_tf.record("inter")))
    monkeypatch.setitem(sys.modules, "tensorflow", late_tf)
    assert runtime.limit_threads() == 2 and late_tf.calls == [] and torch.calls == [("intra", 2), ("inter", 2)]
    assert "tensorflow" in runtime._threads_applied


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(extra)
    return env


def _python(code: str, env: dict[str, str], prefix: list[str] | None = None) -> list[str]:
    result = subprocess.run([*(prefix or []), sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_torch_uses_the_limit_whether_imported_before_or_after_helpers() -> None:
    after = "import helpers, torch; helpers.seed_everything(0); print(torch.get_num_threads(), torch.get_num_interop_threads())"
    before = "import torch, helpers; helpers.seed_everything(0); print(torch.get_num_threads(), torch.get_num_interop_threads())"
    at_import = "import helpers, torch; print(torch.get_num_threads())"  # OMP_NUM_THREADS, read as torch loads
    assert _python(after, _clean_env(DLNLP_THREADS="1")) == ["1", "1"]
    assert _python(before, _clean_env(DLNLP_THREADS="1")) == ["1", "1"]
    assert _python(at_import, _clean_env(DLNLP_THREADS="1")) == ["1"]
    assert _python(after, _clean_env(DLNLP_THREADS="1", OMP_NUM_THREADS="2"))[0] == "2"  # the learner's setting wins


def test_tensorflow_uses_the_limit_in_the_notebooks_order() -> None:
    code = ("import helpers, keras, tensorflow as tf; helpers.seed_everything(0); tf.constant(1.0) + 1; "
            "t = tf.config.threading; print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())")
    assert _python(code, _clean_env(DLNLP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")) == ["1", "1"]


def test_a_bad_dlnlp_threads_fails_in_seed_everything_not_on_import() -> None:
    code = ("import helpers\ntry:\n    helpers.seed_everything(0)\nexcept ValueError as err:\n    print('error', err)")
    out = " ".join(_python(code, _clean_env(DLNLP_THREADS="many")))
    assert out.startswith("error DLNLP_THREADS='many' is not a whole number"), out


# ---- a real one-CPU cgroup (root only; cgroup v2, or v1's cpu controller as on hybrid hosts) ----

def _mounts() -> list[tuple[str, str, str]]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if tail and tail[0] == "cgroup2":
            mounts.append(("v2", fields[3], fields[4]))
        elif tail and tail[0] == "cgroup" and "cpu" in tail[2].split(","):
            mounts.append(("v1", fields[3], fields[4]))
    return mounts


def _own_folder(version: str, mounted: str, mount_point: str) -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if (version == "v2" and number == "0" and not controllers) or (version == "v1" and "cpu" in controllers.split(",")):
            relative = path[len(mounted.rstrip("/")):] if path.startswith(mounted.rstrip("/") + "/") else ""
            return Path(mount_point, *[p for p in relative.split("/") if p and p != ".."])
    return Path(mount_point)


def _make_v2_child(own: Path, mount_point: str, name: str) -> tuple[Path | None, str]:
    """A child with ``cpu.max`` under the process's cgroup or the nearest parent that can enable the cpu controller."""
    reasons = []
    for parent in (own, *[p for p in own.parents if Path(mount_point) in (p, *p.parents)]):
        if "cpu" not in (parent / "cgroup.controllers").read_text().split():
            reasons.append(f"{parent} has no cpu controller")
            continue
        try:
            if "cpu" not in (parent / "cgroup.subtree_control").read_text().split():
                (parent / "cgroup.subtree_control").write_text("+cpu")
            child = parent / name
            child.mkdir()
        except OSError as err:  # EBUSY: a cgroup with processes cannot hand controllers to children
            reasons.append(f"{parent}: {err}")
            continue
        try:
            (child / "cpu.max").write_text("100000 100000")
        except OSError as err:
            child.rmdir()
            reasons.append(f"{child}/cpu.max: {err}")
            continue
        return child, ""
    return None, "; ".join(reasons)


def _make_v1_child(own: Path, name: str) -> tuple[Path | None, str]:
    child = own / name
    try:
        child.mkdir()
        (child / "cpu.cfs_period_us").write_text("100000")
        (child / "cpu.cfs_quota_us").write_text("100000")
    except OSError as err:
        if child.exists():
            child.rmdir()
        return None, f"{own}: {err}"
    return child, ""


@pytest.fixture
def one_cpu_cgroup() -> Iterator[Path]:
    """A new cgroup limited to one CPU of time (100 ms per 100 ms), removed afterwards; skips where none can be made."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("needs root on Linux to create a cgroup")
    try:
        mounts = _mounts()
    except OSError as err:
        pytest.skip(f"cannot read /proc/self/mountinfo ({err})")
    name, child, reasons = f"dlnlp-test-{os.getpid()}", None, []
    for version, mounted, mount_point in sorted(mounts):  # v1's cpu controller (hybrid hosts) or else v2
        own = _own_folder(version, mounted, mount_point)
        try:
            child, reason = _make_v2_child(own, mount_point, name) if version == "v2" else _make_v1_child(own, name)
        except OSError as err:
            child, reason = None, f"{own}: {err}"
        if child is not None:
            break
        reasons.append(f"{version}: {reason}")
    if child is None:
        pytest.skip("no writable cgroup with the cpu controller: " + ("; ".join(reasons) or "no cgroup mounted"))
    try:
        yield child
    finally:
        for _ in range(100):  # the emptied cgroup is removable once the kernel has noted the exit
            try:
                child.rmdir()
                break
            except OSError:
                time.sleep(0.05)


def test_inside_a_one_cpu_cgroup(one_cpu_cgroup: Path) -> None:
    inside = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(one_cpu_cgroup)]
    code = "import helpers.runtime as r; print(r.usable_cpus())"
    assert _python(code, _clean_env(), prefix=inside) == ["1"]
    code = ("import helpers, torch; print(torch.get_num_threads()); "
            "print(helpers.runtime.limit_threads(), torch.get_num_threads(), torch.get_num_interop_threads())")
    assert _python(code, _clean_env(), prefix=inside) == ["1", "1", "1", "1"]
    # A parent's helpers (2 CPUs, say) leaves its variables behind; inside the cgroup they are recomputed.
    inherited = _clean_env(DLNLP_THREADS_SET="2", **dict.fromkeys(runtime.THREAD_ENV_VARS, "2"))
    assert _python("import helpers, torch; print(torch.get_num_threads())", inherited, prefix=inside) == ["1"]
