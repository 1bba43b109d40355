"""What every runtime bundle is built from: the board's bundle block (`BundleSpec`), the
architectures, the download cache, and downloads retried with backoff and checked against
their hash. The Debian sysroot (`debian`) and the PyPI site (`bundle`) build on it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dyndnn.provenance import sha256_file, write_atomic

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MIRROR",
    "DEFAULT_KEYRING",
    "ARCHES",
    "QEMU",
    "EXCLUDE",
    "RUNTIME_LAYOUT",
    "EXTRACT_FILTER",
    "CACHE",
    "BundleError",
    "BundleSpec",
    "fetch",
]


DEFAULT_MIRROR = "http://deb.debian.org/debian"


DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


# Debian architecture -> (GNU triplet, dynamic loader path in the sysroot, pip platform tag)
ARCHES = {
    "armhf": ("arm-linux-gnueabihf", "lib/ld-linux-armhf.so.3", "linux_armv7l"),
    "arm64": ("aarch64-linux-gnu", "lib/ld-linux-aarch64.so.1", "manylinux2014_aarch64"),
    "amd64": ("x86_64-linux-gnu", "lib64/ld-linux-x86-64.so.2", "manylinux2014_x86_64"),
}


QEMU = {"armhf": "qemu-arm-static", "arm64": "qemu-aarch64-static", "amd64": None}


# Installed by every Debian system but useless to a program that only runs:
# package management, configuration prompts and their interpreters.
EXCLUDE = (
    "dpkg",
    "debconf",
    "perl-base",
    "install-info",
    "debianutils",
    "sensible-utils",
    "tzdata",
    "readline-common",
    "media-types",
    "netbase",
)


RUNTIME_LAYOUT = 2  # bump when the cached runtime folder changes shape


# tarfile's "tar" filter (no paths outside the sysroot) exists from Python 3.10.12 / 3.11.4
EXTRACT_FILTER = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}


CACHE = Path(os.environ.get("DYNDNN_CACHE", Path.home() / ".cache" / "dyndnn")) / "bundles"


class BundleError(RuntimeError):
    pass


@dataclass(frozen=True)
class BundleSpec:
    """A board config's ``bundle`` block (validated by the board schema)."""

    arch: str
    python: str
    source: str
    packages: tuple[str, ...]
    suite: str | None = None
    mirror: str = DEFAULT_MIRROR
    exclude: tuple[str, ...] = EXCLUDE
    interpreter: str = "python3"  # pypi: the board's own interpreter
    keyring: str = DEFAULT_KEYRING

    @classmethod
    def from_board(cls, board: dict) -> BundleSpec:
        b = dict(board["bundle"])
        b["packages"] = tuple(b["packages"])
        b["exclude"] = tuple(b.get("exclude", EXCLUDE))
        b["python"] = str(b["python"])
        b.setdefault("interpreter", board["transport"].get("python") or "python3")
        b.pop("use", None)
        return cls(**b)

    def key(self) -> str:
        """The cache key: the hash of what is downloaded, not of how it is used."""
        what = {
            "layout": RUNTIME_LAYOUT,
            "arch": self.arch,
            "python": self.python,
            "source": self.source,
            "packages": sorted(self.packages),
            "suite": self.suite,
            "mirror": self.mirror,
            "exclude": sorted(self.exclude),
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def fetch(url: str, dest: Path, sha256: str | None = None, retries: int = 4, timeout: float = 60) -> Path:
    """Download url to dest (atomically), retried with backoff; checked against sha256 when given.
    An existing dest with the right hash is reused."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    last = None
    for attempt in range(retries):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                data = r.read()
            if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
                raise BundleError(f"{url}: sha256 mismatch (expected {sha256}, got {hashlib.sha256(data).hexdigest()})")
            write_atomic(dest, data)
            return dest
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            last = e
            log.warning("download %s failed (attempt %d/%d): %s", url, attempt + 1, retries, e)
            time.sleep(min(2**attempt, 10))
    raise BundleError(f"cannot download {url} after {retries} attempts: {last}")


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "(no output)"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
