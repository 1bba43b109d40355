"""Power readers against a temporary sysfs tree (sysfs_root)."""

from __future__ import annotations

import time

import pytest

from dyndnn.boards.onboard import power


def rapl_tree(root, zones):
    for name, (energy, max_range) in zones.items():
        z = root / "sys/class/powercap" / name
        z.mkdir(parents=True)
        (z / "energy_uj").write_text(f"{energy}\n")
        (z / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


def set_energy(root, name, value):
    (root / "sys/class/powercap" / name / "energy_uj").write_text(f"{value}\n")


def test_rapl_sums_packages_and_ignores_subzones(tmp_path):
    root = rapl_tree(tmp_path, {"intel-rapl:0": (1_000_000, 10**9), "intel-rapl:1": (0, 10**9), "intel-rapl:0:0": (5, 10**9)})
    reader = power.RaplReader(str(root))
    assert [z.rsplit("/", 1)[1] for z in reader.zones] == ["intel-rapl:0", "intel-rapl:1"]
    set_energy(root, "intel-rapl:0", 3_000_000)
    set_energy(root, "intel-rapl:1", 500_000)
    assert reader.poll() == pytest.approx(2.5)


def test_rapl_wraparound(tmp_path):
    max_range = 262_143_328_850
    root = rapl_tree(tmp_path, {"intel-rapl:0": (max_range - 1_000_000, max_range)})
    reader = power.RaplReader(str(root))
    set_energy(root, "intel-rapl:0", 2_000_000)  # wrapped: 1 J before the wrap + 2 J after (+1 uJ for the zero step)
    assert reader.poll() == pytest.approx(3.000001)


def test_rapl_absent_or_unreadable(tmp_path):
    with pytest.raises(power.PowerUnavailable, match="no RAPL domain"):
        power.RaplReader(str(tmp_path))
    rapl_tree(tmp_path, {"intel-rapl:0": (0, 100)})
    (tmp_path / "sys/class/powercap/intel-rapl:0/energy_uj").unlink()
    with pytest.raises(power.PowerUnavailable, match="not readable"):
        power.RaplReader(str(tmp_path))


def test_energy_meter_integrates_polls(tmp_path):
    root = rapl_tree(tmp_path, {"intel-rapl:0": (0, 10**12)})

    class Counting(power.RaplReader):
        def poll(self):  # the counter advances 0.5 J between polls
            self.calls = getattr(self, "calls", 0) + 1
            set_energy(root, "intel-rapl:0", self.calls * 500_000)
            return super().poll()

    with power.EnergyMeter(Counting(str(root)), rate_hz=200) as meter:
        import time

        time.sleep(0.1)
    assert meter.samples >= 5
    assert meter.energy_j == pytest.approx(0.5 * meter.samples)
    assert meter.power_w == pytest.approx(meter.energy_j / meter.duration_s)


def test_energy_per_inference_covers_exactly_the_timed_inferences(tmp_path):
    """An INA3221 rail that reads 10 W during the warm-up and 2 W from the moment it ends
    (the last warm-up inference switches it): energy per inference must be 2 W x the
    inference time, with none of the warm-up's 10 W in it."""
    from dyndnn.boards.onboard import runner

    rail = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input"
    rail.parent.mkdir(parents=True)
    rail.write_text("10000\n")  # mW
    reader = power.Ina3221Reader({"board": "sys/bus/i2c/drivers/ina3221x/*/iio:device0/in_power0_input"}, ["board"], str(tmp_path))
    settings = {"warmup": 10, "min_runs": 20, "min_seconds": 0.0}
    calls = []

    def infer():
        calls.append(1)
        time.sleep(0.01)
        tmp = rail.with_name("next")  # replaced whole, as a sensor's reading changes
        tmp.write_text("10000\n" if len(calls) < settings["warmup"] else "2000\n")
        tmp.replace(rail)

    with power.EnergyMeter(reader, rate_hz=200) as meter:
        samples = runner.time_model(infer, settings, meter)
    energy_j, power_w, window_s, window = runner.energy_per_inference(meter, samples)
    assert len(samples) == 20 and window == "timed inferences"
    assert window_s == pytest.approx(sum(samples) / 1e3, rel=0.1)
    assert power_w == pytest.approx(2.0, rel=0.1)  # the whole block averages ~5 W
    assert energy_j == pytest.approx(2.0 * sum(samples) / 1e3 / len(samples), rel=0.1)
    assert meter.energy_j > 2 * meter.window_j  # the warm-up's energy was integrated, outside the window


def test_energy_per_inference_without_a_window_uses_mean_power_and_latency():
    class Meter:  # a TensorRT point: trtexec timed itself, the meter saw the whole process
        window_s, power_w, duration_s = None, 4.0, 3.0

    energy_j, power_w, _, window = runner_energy(Meter(), [2.0, 4.0])
    assert (energy_j, power_w, window) == (pytest.approx(4.0 * 0.003), 4.0, "process mean power x mean latency")


def runner_energy(meter, samples):
    from dyndnn.boards.onboard import runner

    return runner.energy_per_inference(meter, samples)
