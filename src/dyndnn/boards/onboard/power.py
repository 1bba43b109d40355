"""Power and energy readers for boards; standard library only.

Scope: read energy counters (RAPL) or instantaneous power rails (INA231 on the
Odroid XU3, INA3221 on the Jetson Nano) in a background thread at a fixed rate and
integrate energy over a measured interval. Runs on the board next to
`runner.py`, so it imports neither torch nor the rest of dyndnn. Every sysfs
path is taken below `sysfs_root`, so tests can point it at a temporary tree.
"""

import glob
import os
import threading
import time

__all__ = ["PowerUnavailable", "make_reader", "RaplReader", "RailReader", "Ina231Reader", "Ina3221Reader", "NoPower", "EnergyMeter"]


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
            raise PowerUnavailable("RAPL counters not readable: %s" % e) from e

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

    def close(self):
        pass


class RailReader:
    """Instantaneous power rails (W after `scale`), integrated trapezoidally between polls.

    `rails`: {name: file path below sysfs_root}; `total`: the rail names whose sum is the
    board's energy (INA3221's board-input rail already includes the others, so it alone).
    """

    name = "rails"

    def __init__(self, rails, total, scale, sysfs_root="/"):
        self._clock = time.perf_counter
        self.paths = {}
        for rail, pattern in rails.items():
            matches = sorted(glob.glob(os.path.join(sysfs_root, pattern.lstrip("/"))))
            if not matches:
                raise PowerUnavailable("rail %s: no file matches %s" % (rail, pattern))
            self.paths[rail] = matches[0]
        unknown = set(total) - set(self.paths)
        if unknown:
            raise ValueError("total names unknown rails %s" % sorted(unknown))
        self.total, self.scale = list(total), scale
        self.rail_energy_j = {r: 0.0 for r in self.paths}
        try:
            self._last = (self._clock(), self.read_w())
        except (OSError, ValueError) as e:
            raise PowerUnavailable("power rails not readable: %s" % e) from e

    def close(self):
        pass

    def read_w(self):
        return {r: float(_read(p)) * self.scale for r, p in self.paths.items()}

    def poll(self):
        t, watts = self._clock(), self.read_w()
        t0, before = self._last
        self._last = (t, watts)
        for r in watts:
            self.rail_energy_j[r] += (before[r] + watts[r]) / 2 * (t - t0)
        return sum((before[r] + watts[r]) / 2 * (t - t0) for r in self.total)


class Ina231Reader(RailReader):
    """Odroid XU3: INA231 sensors `<bus>-00XX/sensor_W` (W); `enable` is written 1 first
    and put back as found on `close`; the first reading needs ~2 s (`settle_s`)."""

    name = "ina231"

    def __init__(self, rails, total, sysfs_root="/", settle_s=2.0):
        self.enabled = []
        for pattern in rails.values():
            for d in sorted(glob.glob(os.path.join(sysfs_root, os.path.dirname(pattern.lstrip("/"))))):
                enable = os.path.join(d, "enable")
                if os.path.exists(enable):
                    before = _read(enable)
                    if before != "1":
                        with open(enable, "w") as f:
                            f.write("1")
                        self.enabled.append((enable, before))
        if self.enabled and settle_s:
            time.sleep(settle_s)
        RailReader.__init__(self, rails, total, 1.0, sysfs_root)

    def close(self):
        for enable, before in self.enabled:
            with open(enable, "w") as f:
                f.write(before)
        self.enabled = []


class Ina3221Reader(RailReader):
    """Jetson Nano: INA3221 `in_powerN_input` in mW; rail 0 (POM_5V_IN) is the board input."""

    name = "ina3221"

    def __init__(self, rails, total, sysfs_root="/"):
        RailReader.__init__(self, rails, total, 1e-3, sysfs_root)


class NoPower:
    name = "none"

    def poll(self):
        return 0.0

    def close(self):
        pass


def make_reader(cfg, sysfs_root="/"):
    """A reader for a board's `power` config: {backend, rails, total, settle_s}."""
    backend = cfg.get("backend", "none")
    if backend == "none":
        return NoPower()
    if backend == "rapl":
        return RaplReader(sysfs_root)
    if backend == "ina231":
        return Ina231Reader(cfg["rails"], cfg["total"], sysfs_root, cfg.get("settle_s", 2.0))
    if backend == "ina3221":
        return Ina3221Reader(cfg["rails"], cfg["total"], sysfs_root)
    raise ValueError("unknown power backend %r (known: none, rapl, ina231, ina3221)" % backend)


class EnergyMeter:
    """Polls a reader in a thread at `rate_hz` while in a `with` block.

    Polling faster than the counter can wrap is what makes wrap-around safe.
    Afterwards: `energy_j`, `duration_s`, `samples` and `power_w` (mean) of the
    whole block, and `window_j` / `window_s` of the interval between `open_window()`
    and `close_window()` (both poll the reader at once, so the window's energy is
    exactly what was integrated between them: e.g. the timed inferences, not the
    warm-up before them).
    """

    def __init__(self, reader, rate_hz=20.0):
        self.reader, self.period = reader, 1.0 / rate_hz
        self.energy_j, self.samples, self.duration_s = 0.0, 0, 0.0
        self.window_j, self.window_s = 0.0, None
        self._in_window = False
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _poll(self, window=None):
        """Integrate up to now; `window` True/False then opens/closes the window at this
        very poll (under the lock, so no background poll falls between the two)."""
        with self._lock:
            delta = self.reader.poll()
            self.energy_j += delta
            self.samples += 1
            if self._in_window:
                self.window_j += delta
            if window is True:
                self._in_window, self.window_j, self._w0 = True, 0.0, time.perf_counter()
            elif window is False:
                self._in_window, self.window_s = False, time.perf_counter() - self._w0

    def _loop(self):
        while not self._stop.wait(self.period):
            self._poll()

    def open_window(self):
        """Start the measured window now (what was integrated so far stays outside it)."""
        self._poll(window=True)

    def close_window(self):
        """End the measured window now."""
        self._poll(window=False)

    def __enter__(self):
        self.reader.poll()  # start the interval now
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._poll(window=False if self._in_window else None)
        self.duration_s = time.perf_counter() - self._t0
        return False

    @property
    def power_w(self):
        return self.energy_j / self.duration_s if self.duration_s else float("nan")
