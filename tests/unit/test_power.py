"""Power readers against a temporary sysfs tree (sysfs_root)."""

from __future__ import annotations

import pytest

from dyndnn import power


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
