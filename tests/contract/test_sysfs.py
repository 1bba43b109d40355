"""DVFS and power rails against a temporary sysfs tree (sysfs_root): levels are written,
every original value comes back (after success, an exception and SIGTERM), and rail
readings integrate to the right energy."""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import REPO, TINY

from dyndnn.boards.onboard import dvfs, power
from dyndnn.learn.export import to_onnx_bytes
from dyndnn.learn.model import GroupedAlexNet, ModelConfig

POLICY = "sys/devices/system/cpu/cpufreq/policy4"
GPU = "sys/devices/57000000.gpu/devfreq/57000000.gpu"
CPU_FILES = {
    "scaling_available_frequencies": "200000 800000 1400000 2000000",
    "scaling_available_governors": "ondemand userspace performance",
    "scaling_governor": "ondemand",
    "scaling_setspeed": "<unsupported>",
    "scaling_min_freq": "200000",
    "scaling_max_freq": "2000000",
    "scaling_cur_freq": "1400000",
}
GPU_FILES = {
    "available_frequencies": "76800000 460800000 921600000",
    "min_freq": "76800000",
    "max_freq": "921600000",
    "cur_freq": "460800000",
}


def snapshot(root):
    """Every value, as sysfs reads it back (a trailing newline is not part of the value)."""
    return {p.relative_to(root).as_posix(): p.read_text().strip() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / "sysfs"
    for d, files in ((POLICY, CPU_FILES), (GPU, GPU_FILES)):
        (root / d).mkdir(parents=True)
        for name, value in files.items():
            (root / d / name).write_text(value + "\n")
    return root


def test_cpufreq_userspace_level_and_restore(sysfs):
    before = snapshot(sysfs)
    c = dvfs.DvfsController()
    c.set_level(dvfs.Domain("a15", "cpufreq", POLICY, str(sysfs)), 800000)
    assert (sysfs / POLICY / "scaling_governor").read_text() == "userspace"
    assert (sysfs / POLICY / "scaling_setspeed").read_text() == "800000"
    assert (sysfs / POLICY / "scaling_min_freq").read_text() == (sysfs / POLICY / "scaling_max_freq").read_text() == "800000"
    c.restore()
    assert snapshot(sysfs) == before


def test_cpufreq_without_userspace_uses_min_max_in_a_valid_order(sysfs):
    (sysfs / POLICY / "scaling_available_governors").write_text("ondemand performance\n")
    (sysfs / POLICY / "scaling_setspeed").unlink()
    before = snapshot(sysfs)
    c = dvfs.DvfsController()
    dom = dvfs.Domain("a15", "cpufreq", POLICY, str(sysfs))
    for level in (2000000, 200000, 1400000):  # up from min, down, up again: min never exceeds max
        c.set_level(dom, level)
        assert int((sysfs / POLICY / "scaling_min_freq").read_text()) == int((sysfs / POLICY / "scaling_max_freq").read_text()) == level
    assert (sysfs / POLICY / "scaling_governor").read_text().strip() == "ondemand"
    c.restore()
    assert snapshot(sysfs) == before


def test_devfreq_level_and_restore(sysfs):
    before = snapshot(sysfs)
    c = dvfs.DvfsController()
    dom = dvfs.Domain("gpu", "devfreq", GPU, str(sysfs))
    assert dom.available() == [76800000, 460800000, 921600000]
    assert c.set_level(dom, 76800000) == 460800000  # read back from cur_freq
    assert (sysfs / GPU / "max_freq").read_text() == "76800000"
    c.restore()
    assert snapshot(sysfs) == before


def test_read_only_domain_is_unavailable(sysfs):
    (sysfs / GPU / "min_freq").chmod(0o444)
    dom = dvfs.Domain("gpu", "devfreq", GPU, str(sysfs))
    if not __import__("os").access(sysfs / GPU / "min_freq", __import__("os").W_OK):
        with pytest.raises(dvfs.DvfsUnavailable, match="read-only"):
            dom.check_writable()
    with pytest.raises(dvfs.DvfsUnavailable, match="absent"):
        dvfs.Domain("x", "cpufreq", "sys/nowhere", str(sysfs)).check_writable()


# -- the runner, in process and as a real process ------------------------------------
@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("m") / "g1.onnx"
    p.write_bytes(to_onnx_bytes(GroupedAlexNet(ModelConfig(**TINY)).materialize(1), 13, 7))
    return p


def plan(sysfs, model, min_seconds=0.02, **power_cfg):
    return {
        "models": [{"label": "dynamic/g1", "path": str(model)}],
        "mappings": [
            {"name": "big", "cpus": "all", "threads": 1, "dvfs": "a15"},
            {"name": "gpu-ish", "cpus": [0], "threads": 1, "dvfs": "gpu"},
        ],
        "dvfs": {
            "a15": {"kind": "cpufreq", "path": POLICY, "frequencies": [200000, 2000000]},
            "gpu": {"kind": "devfreq", "path": GPU, "frequencies": "available"},
        },
        "settings": {"warmup": 1, "min_runs": 3, "min_seconds": min_seconds, "seed": 0},
        "power": {"backend": "none", "rate_hz": 50, **power_cfg},
        "sysfs_root": str(sysfs),
        "input_shape": [1, 3, 32, 32],
    }


@pytest.fixture
def runner_module():
    sys.path.insert(0, str(REPO / "src/dyndnn/boards/onboard"))
    try:
        yield importlib.import_module("runner")
    finally:
        sys.path.remove(str(REPO / "src/dyndnn/boards/onboard"))


def run_in_process(runner_module, tmp_path, p):
    (tmp_path / "plan.json").write_text(json.dumps(p))
    return runner_module.main(["runner.py", str(tmp_path / "plan.json"), str(tmp_path / "out")])


def test_runner_sweeps_levels_and_restores_after_success(runner_module, sysfs, onnx_model, tmp_path):
    before = snapshot(sysfs)
    assert run_in_process(runner_module, tmp_path, plan(sysfs, onnx_model)) == 0
    assert snapshot(sysfs) == before
    import pandas as pd

    s = pd.read_csv(tmp_path / "out/summary.csv")
    assert list(s[s.mapping == "big"].frequency) == [200000, 2000000]
    assert list(s[s.mapping == "gpu-ish"].frequency) == [76800000, 460800000, 921600000]
    assert set(s.dvfs_domain) == {"a15", "gpu"}
    assert json.loads((tmp_path / "out/board.json").read_text())["dvfs"] == "controlled"


def test_runner_restores_after_an_exception(runner_module, sysfs, onnx_model, tmp_path):
    """A worker fails in the middle of a round (its second mapping asks for a GPU this host's
    runtime lacks), after it set the first mapping's frequency: every DVFS value is back."""
    before = snapshot(sysfs)
    p = plan(sysfs, onnx_model)
    p["mappings"][1]["device"] = "gpu"
    p["settings"].update(shuffle=False)  # plan order: the CPU mapping's levels are set before the failing visit
    with pytest.raises(RuntimeError, match="worker 0 ended during round 0"):
        run_in_process(runner_module, tmp_path, p)
    assert snapshot(sysfs) == before


def test_runner_interleaves_randomised_rounds_over_worker_processes(runner_module, sysfs, onnx_model, tmp_path):
    """Every round visits every point once, in its own seeded order; rounds alternate between the
    workers; each point gets its runs over all rounds; every sample says where it came from."""
    import pandas as pd

    p = plan(sysfs, onnx_model)
    p["settings"].update(rounds=4, workers=2, min_runs=8, visit_warmup=1, huge_pages=True)
    thp = sysfs / "sys/kernel/mm/transparent_hugepage/enabled"
    thp.parent.mkdir(parents=True, exist_ok=True)
    thp.write_text("always [madvise] never\n")
    assert run_in_process(runner_module, tmp_path, p) == 0
    facts = json.loads((tmp_path / "out/board.json").read_text())
    assert facts["huge_pages"] == "requested" and facts["thp_mode"] == "madvise"
    assert len(facts["workers_huge_pages_mb"]) == 2  # what each worker held on huge pages (None where /proc does not say)
    s = pd.read_csv(tmp_path / "out/samples.csv")
    visits = s.groupby(["round", "position"]).agg(
        point=("frequency", lambda f: f.iloc[0]), mapping=("mapping", "first"), n=("worker", "size")
    )
    points = 2 + 3  # two levels of the CPU mapping, three of the devfreq one
    assert sorted(s["round"].unique()) == [0, 1, 2, 3] and (visits.groupby(level="round").size() == points).all()
    assert (s.groupby("round").worker.first() == [0, 1, 0, 1]).all()
    orders = {
        r: tuple(zip(g.sort_values("position").mapping, g.sort_values("position").point)) for r, g in visits.reset_index().groupby("round")
    }
    assert len(set(orders.values())) > 1  # randomised: not every round in the same order
    summary = pd.read_csv(tmp_path / "out/summary.csv")
    assert (summary.rounds == 4).all() and (summary.n >= 8).all() and (visits.n >= 2).all()  # ceil(8 / 4) runs per visit
    assert (s.groupby(["mapping", "frequency"]).run_idx.apply(lambda r: sorted(r) == list(range(len(r))))).all()
    assert s.t_s.is_monotonic_increasing or s.sort_values(["round", "position"]).t_s.is_monotonic_increasing


def test_runner_restores_after_sigterm(sysfs, onnx_model, tmp_path):
    before = snapshot(sysfs)
    p = plan(sysfs, onnx_model, min_seconds=60)
    p["settings"].update(shuffle=False)  # plan order: the a15 levels first (the one this test watches)
    (tmp_path / "plan.json").write_text(json.dumps(p))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "src/dyndnn/boards/onboard/runner.py"), str(tmp_path / "plan.json"), str(tmp_path / "out")],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while (sysfs / POLICY / "scaling_governor").read_text() != "userspace":
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Terminated" in err
    assert snapshot(sysfs) == before
    assert not (tmp_path / "out/summary.csv").exists()


# -- power rails ------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_ina231_enable_integrate_and_put_back(tmp_path):
    base = tmp_path / "sys/bus/i2c/drivers/INA231"
    for addr, watts in (("3-0040", "2.0"), ("3-0045", "0.5")):
        (base / addr).mkdir(parents=True)
        (base / addr / "enable").write_text("0\n")
        (base / addr / "sensor_W").write_text(watts + "\n")
    rails = {"a15": "sys/bus/i2c/drivers/INA231/*-0040/sensor_W", "a7": "sys/bus/i2c/drivers/INA231/*-0045/sensor_W"}
    reader = power.make_reader({"backend": "ina231", "rails": rails, "total": ["a15", "a7"], "settle_s": 0}, str(tmp_path))
    assert (base / "3-0040/enable").read_text() == "1"
    clock = FakeClock()
    reader._clock, reader._last = clock, (0.0, reader.read_w())
    clock.t = 2.0
    (base / "3-0040/sensor_W").write_text("4.0\n")  # ramp 2 -> 4 W over 2 s: 6 J; a7 constant 0.5 W: 1 J
    assert reader.poll() == pytest.approx(7.0)
    assert reader.rail_energy_j == pytest.approx({"a15": 6.0, "a7": 1.0})
    reader.close()
    assert (base / "3-0040/enable").read_text() == "0"


def test_ina3221_counts_only_the_board_input_rail(tmp_path):
    d = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    d.mkdir(parents=True)
    for i, mw in enumerate(("5000", "1200", "800")):
        (d / f"in_power{i}_input").write_text(mw + "\n")
    rails = {n: f"sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power{i}_input" for i, n in enumerate(("board", "gpu", "cpu"))}
    reader = power.make_reader({"backend": "ina3221", "rails": rails, "total": ["board"]}, str(tmp_path))
    clock = FakeClock()
    reader._clock, reader._last = clock, (0.0, reader.read_w())
    clock.t = 0.5
    assert reader.poll() == pytest.approx(2.5)  # 5 W x 0.5 s; the GPU and CPU rails are inside it
    assert reader.rail_energy_j["gpu"] == pytest.approx(0.6)


def test_missing_rail_is_unavailable(tmp_path):
    with pytest.raises(power.PowerUnavailable, match="no file matches"):
        power.make_reader({"backend": "ina3221", "rails": {"board": "sys/x/in_power0_input"}, "total": ["board"]}, str(tmp_path))


def test_a_board_is_never_measured_twice_at_once(sysfs, onnx_model, tmp_path):
    import fcntl

    lock = tmp_path / "board.lock"
    p = {**plan(sysfs, onnx_model), "lock": str(lock)}
    (tmp_path / "plan.json").write_text(json.dumps(p))
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another measurement is running
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "src/dyndnn/boards/onboard/runner.py"), str(tmp_path / "plan.json"), str(tmp_path / "out")],
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)
        assert proc.poll() is None and not (tmp_path / "out/summary.csv").exists()
        assert (sysfs / POLICY / "scaling_governor").read_text().strip() == "ondemand", "touched the board while it was locked"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "waiting for another measurement" in err
    assert (tmp_path / "out/summary.csv").exists()
