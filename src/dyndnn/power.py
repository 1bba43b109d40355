"""Power and energy readers for boards; standard library only.

Scope: read energy counters (RAPL) in a background thread at a fixed rate and
integrate energy over a measured interval. Runs on the board next to
`runner.py`, so it imports neither torch nor the rest of dyndnn. Every sysfs
path is taken below `sysfs_root`, so tests can point it at a temporary tree.
"""

import glob
import os
import threading
import time

__all__ = ["PowerUnavailable", "make_reader", "RaplReader", "EnergyMeter"]


class PowerUnavailable(RuntimeError):
    """The configured backend cannot be read on this board (absent, or not permitted)."""


def _read(path):
    with open(path) as f:
        return f.read().strip()


class RaplReader:
    """Intel RAPL package domains: cumulative `energy_uj` counters that wrap at
    `max_energy_range_uj`. Sums all top-level packages (intel-rapl:N)."""

    name = "rapl"

    def __init__(self, sysfs_root="/"):
        pattern = os.path.join(sysfs_root, "sys/class/powercap/intel-rapl:[0-9]*")
        self.zones = sorted(z for z in glob.glob(pattern) if z.rsplit("intel-rapl:", 1)[1].isdigit())
        if not self.zones:
            raise PowerUnavailable("no RAPL domain under %s" % os.path.dirname(pattern))
        try:
            self.ranges = [int(_read(os.path.join(z, "max_energy_range_uj"))) for z in self.zones]
            self._last = self._counters()
        except (OSError, ValueError) as e:  # recent kernels make energy_uj root-only
            raise PowerUnavailable("RAPL counters not readable: %s" % e)

    def _counters(self):
        return [int(_read(os.path.join(z, "energy_uj"))) for z in self.zones]

    def poll(self):
        """Energy in joules since the previous poll, unwrapping each counter once."""
        now = self._counters()
        delta = 0
        for before, after, wrap in zip(self._last, now, self.ranges):
            delta += after - before if after >= before else after + wrap + 1 - before
        self._last = now
        return delta / 1e6


class NoPower:
    name = "none"

    def poll(self):
        return 0.0


READERS = {"rapl": RaplReader}


def make_reader(backend, sysfs_root="/"):
    if backend == "none":
        return NoPower()
    if backend not in READERS:
        raise ValueError("unknown power backend %r (known: none, %s)" % (backend, ", ".join(READERS)))
    return READERS[backend](sysfs_root)


class EnergyMeter:
    """Polls a reader in a thread at `rate_hz` while in a `with` block.

    Polling faster than the counter can wrap is what makes wrap-around safe.
    Afterwards: `energy_j`, `duration_s`, `samples` and `power_w` (mean).
    """

    def __init__(self, reader, rate_hz=20.0):
        self.reader, self.period = reader, 1.0 / rate_hz
        self.energy_j, self.samples, self.duration_s = 0.0, 0, 0.0
        self._stop = threading.Event()

    def _loop(self):
        while not self._stop.wait(self.period):
            self.energy_j += self.reader.poll()
            self.samples += 1

    def __enter__(self):
        self.reader.poll()  # start the interval now
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.energy_j += self.reader.poll()
        self.samples += 1
        self.duration_s = time.perf_counter() - self._t0
        return False

    @property
    def power_w(self):
        return self.energy_j / self.duration_s if self.duration_s else float("nan")
