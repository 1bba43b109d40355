"""DVFS on boards: pin a frequency domain to a level, and put everything back.

Scope: cpufreq policies (governor ``userspace`` + ``scaling_setspeed`` when the
kernel offers it, else ``scaling_min_freq`` = ``scaling_max_freq``) and devfreq
devices (``min_freq`` = ``max_freq``). Every sysfs value is recorded before its
first write and restored by `DvfsController.restore`, which the runner calls in
a ``finally``; `signals_raise` turns SIGTERM/SIGINT/SIGHUP into an exception so
that ``finally`` also runs when the job is killed. Runs on the board next to
`runner.py`: standard library only. A domain that is absent or read-only (a
container, a VM) is reported as fixed, never an error unless asked.
"""

import contextlib
import os
import signal

__all__ = ["DvfsUnavailable", "Domain", "DvfsController", "signals_raise", "Terminated"]


class DvfsUnavailable(RuntimeError):
    """The domain cannot be controlled here (absent, or not writable)."""


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT/SIGHUP so that cleanup runs."""


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


class Domain:
    """One frequency domain: a cpufreq policy directory or a devfreq device directory.

    Frequencies are in kHz for cpufreq and Hz for devfreq, as the kernel writes them.
    """

    def __init__(self, name, kind, path, sysfs_root="/"):
        if kind not in ("cpufreq", "devfreq"):
            raise ValueError("unknown DVFS kind %r (cpufreq, devfreq)" % kind)
        self.name, self.kind = name, kind
        self.path = os.path.join(sysfs_root, path.lstrip("/"))
        if kind == "cpufreq":
            self.min_file, self.max_file = "scaling_min_freq", "scaling_max_freq"
        else:
            self.min_file, self.max_file = "min_freq", "max_freq"

    def file(self, name):
        return os.path.join(self.path, name)

    def available(self):
        """Frequencies the domain offers, ascending."""
        name = "scaling_available_frequencies" if self.kind == "cpufreq" else "available_frequencies"
        try:
            return sorted(int(v) for v in _read(self.file(name)).split())
        except (OSError, ValueError) as e:
            raise DvfsUnavailable("%s: cannot read %s" % (self.name, self.file(name))) from e

    def current(self):
        name = "scaling_cur_freq" if self.kind == "cpufreq" else "cur_freq"
        try:
            return int(_read(self.file(name)))
        except (OSError, ValueError):
            return None

    def check_writable(self):
        for name in (self.min_file, self.max_file):
            if not os.access(self.file(name), os.W_OK):
                raise DvfsUnavailable("%s: %s is absent or read-only" % (self.name, self.file(name)))


class DvfsController:
    """Sets levels and remembers the original value of every file it touched."""

    def __init__(self):
        self.saved = []  # (path, original value), in first-touch order

    def _set(self, path, value):
        if not any(p == path for p, _ in self.saved):
            self.saved.append((path, _read(path)))
        _write(path, value)

    def _set_range(self, domain, low, high):
        """Write min/max in the order the kernel accepts (min never above max)."""
        current_max = int(_read(domain.file(domain.max_file)))
        order = (
            [(domain.max_file, high), (domain.min_file, low)] if low > current_max else [(domain.min_file, low), (domain.max_file, high)]
        )
        for name, value in order:
            self._set(domain.file(name), value)

    def set_level(self, domain, freq):
        """Pin `domain` to `freq`; returns the frequency read back afterwards."""
        domain.check_writable()
        if (
            domain.kind == "cpufreq"
            and os.path.exists(domain.file("scaling_setspeed"))
            and "userspace" in _read(domain.file("scaling_available_governors")).split()
        ):
            self._set(domain.file("scaling_governor"), "userspace")
            self._set_range(domain, freq, freq)
            self._set(domain.file("scaling_setspeed"), freq)
        else:
            self._set_range(domain, freq, freq)
        return domain.current()

    def restore(self):
        """Put back every original value: governors first, then min/max pairs safely.

        Errors are collected and raised after every file was attempted."""
        errors = []
        by_dir = {}
        for path, value in self.saved:
            by_dir.setdefault(os.path.dirname(path), {})[os.path.basename(path)] = value
        for d, values in by_dir.items():
            for gov in ("scaling_governor",):
                if gov in values:
                    errors += self._try(os.path.join(d, gov), values.pop(gov))
            for lo, hi in (("scaling_min_freq", "scaling_max_freq"), ("min_freq", "max_freq")):
                if lo in values and hi in values:
                    low, high = values.pop(lo), values.pop(hi)
                    try:
                        current_max = int(_read(os.path.join(d, hi)))
                    except (OSError, ValueError):
                        current_max = 0
                    pair = [(hi, high), (lo, low)] if int(low) > current_max else [(lo, low), (hi, high)]
                    for name, value in pair:
                        errors += self._try(os.path.join(d, name), value)
            for name, value in values.items():
                errors += self._try(os.path.join(d, name), value)
        self.saved = []
        if errors:
            raise RuntimeError("DVFS restore failed: " + "; ".join(errors))

    @staticmethod
    def _try(path, value):
        try:
            _write(path, value)
            return []
        except OSError as e:
            return ["%s: %s" % (path, e)]


@contextlib.contextmanager
def signals_raise():
    """Within the block, SIGTERM/SIGINT/SIGHUP raise Terminated (so `finally` runs)."""

    def handler(signum, frame):
        raise Terminated("signal %d" % signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
