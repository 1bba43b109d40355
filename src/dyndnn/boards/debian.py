"""A self-contained Debian sysroot for a board (interpreter, ONNX Runtime, numpy and every
shared library they need), with Debian's chain of trust: the suite's InRelease checked with
gpgv against the archive keyring, the Packages index against InRelease's SHA256, every .deb
against the index; dependencies resolved here and the .debs unpacked without maintainer scripts."""

from __future__ import annotations

import io
import logging
import lzma
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from dyndnn.boards.packages import (
    CACHE,
    DEFAULT_KEYRING,
    DEFAULT_MIRROR,
    EXCLUDE,
    EXTRACT_FILTER,
    BundleError,
    BundleSpec,
    fetch,
)

log = logging.getLogger(__name__)

__all__ = ["parse_depends", "DebianIndex", "resolve", "unpack_deb", "debian_sysroot"]


def _stanzas(text: str):
    """Parse a Debian control file (Packages, Release) into dicts; continuation lines joined."""
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def parse_depends(value: str) -> list[list[str]]:
    """'a (>= 1) | b:any, c [armhf]' -> [['a', 'b'], ['c']] (versions and qualifiers dropped:
    one suite is self-consistent)."""
    groups = []
    for clause in filter(None, (c.strip() for c in value.split(","))):
        alts = [re.split(r"[\s(\[:]", alt.strip(), maxsplit=1)[0] for alt in clause.split("|")]
        groups.append([a for a in alts if a])
    return groups


class DebianIndex:
    """The main component of one suite for one architecture, verified end to end."""

    def __init__(self, suite: str, arch: str, mirror: str = DEFAULT_MIRROR, cache: Path = CACHE, keyring: str = DEFAULT_KEYRING):
        self.suite, self.arch, self.mirror = suite, arch, mirror.rstrip("/")
        dist = cache / "debian" / re.sub(r"\W", "_", self.mirror) / suite
        (dist / "InRelease.new").unlink(missing_ok=True)  # always fresh: the suite moves on
        inrelease = fetch(f"{self.mirror}/dists/{suite}/InRelease", dist / "InRelease.new")
        release = _verify_inrelease(inrelease, keyring)
        os.replace(inrelease, dist / "InRelease")
        name = f"main/binary-{arch}/Packages.xz"
        sums = {line.split()[2]: line.split()[0] for line in release.get("SHA256", "").splitlines() if len(line.split()) == 3}
        if name not in sums:
            raise BundleError(f"{suite} has no {name} (architecture {arch!r} not in the suite?)")
        packages = fetch(f"{self.mirror}/dists/{suite}/{name}", dist / f"Packages-{arch}-{sums[name][:16]}.xz", sums[name])
        self._load(lzma.decompress(packages.read_bytes()).decode())
        self.date = release.get("Date", "")

    @classmethod
    def from_text(cls, packages_text: str, suite: str = "test", arch: str = "armhf") -> DebianIndex:
        """An index from a Packages file's text (no download, no signature): for tests."""
        index = cls.__new__(cls)
        index.suite, index.arch, index.mirror, index.date = suite, arch, "", ""
        index._load(packages_text)
        return index

    def _load(self, text: str) -> None:
        self.packages: dict[str, dict] = {}
        self.provides: dict[str, list[str]] = {}
        for p in _stanzas(text):
            self.packages[p["Package"]] = p
            for group in parse_depends(p.get("Provides", "")):
                self.provides.setdefault(group[0], []).append(p["Package"])

    def pick(self, alternatives: list[str]) -> str | None:
        """The first alternative that is a real package, else the first one's first provider."""
        for name in alternatives:
            if name in self.packages:
                return name
        for name in alternatives:
            if self.provides.get(name):
                return min(self.provides[name])
        return None


def _verify_inrelease(path: Path, keyring: str) -> dict:
    if not Path(keyring).exists():
        raise BundleError(f"no Debian archive keyring at {keyring} (install debian-archive-keyring, or name one in bundle.keyring)")
    if not shutil.which("gpgv"):
        raise BundleError("gpgv is needed to check the Debian archive signature (Debian package gpgv)")
    proc = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", str(path)], capture_output=True, check=False)
    if proc.returncode != 0:
        raise BundleError(f"bad signature on {path.name}: {proc.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    return next(_stanzas(proc.stdout.decode()))


def resolve(index: DebianIndex, roots: list[str], exclude=EXCLUDE) -> list[dict]:
    """The dependency closure (Pre-Depends, Depends) of roots, in discovery order."""
    for root in roots:
        if index.pick([root]) is None:
            raise BundleError(f"package {root!r} is not in Debian {index.suite} for {index.arch}")
    seen, order, queue = set(), [], [[root] for root in roots]
    while queue:
        group = queue.pop(0)
        name = index.pick(group)
        if name is None:
            log.warning("Debian %s %s: no package satisfies %s; left out", index.suite, index.arch, " | ".join(group))
        if name is None or name in seen or name in exclude:
            continue
        seen.add(name)
        stanza = index.packages[name]
        order.append(stanza)
        for key in ("Pre-Depends", "Depends"):
            for group in parse_depends(stanza.get(key, "")):
                if not any(g in exclude for g in group):
                    queue.append(group)
    return order


def _deb_members(path: Path):
    """(name, bytes) of the members of a .deb (an ar archive)."""
    data = path.read_bytes()
    if data[:8] != b"!<arch>\n":
        raise BundleError(f"{path} is not a .deb (ar archive)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        yield name, data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)


def unpack_deb(path: Path, root: Path) -> list[str]:
    """Unpack a .deb's data into root (no maintainer scripts); absolute symlinks are made
    relative to root so that the sysroot never points into the host. Returns the files."""
    for name, blob in _deb_members(path):
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise BundleError(f"{path.name}: zstd-compressed data is not supported")
            files = []
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
                for m in tar.getmembers():
                    if m.issym() and m.linkname.startswith("/"):
                        depth = len(Path(m.name.lstrip("./")).parts) - 1
                        m.linkname = os.path.join(*([".."] * depth), m.linkname.lstrip("/")) if depth else m.linkname.lstrip("/")
                    if m.isdev():
                        continue
                    target = root / m.name
                    if (m.isfile() or m.issym()) and (target.is_symlink() or target.exists()) and not target.is_dir():
                        target.unlink()  # a later package's copy wins, as with dpkg's replaces
                    files.append(m.name)
                    tar.extract(m, root, **EXTRACT_FILTER)
            return files
    raise BundleError(f"{path.name} has no data member")


def debian_sysroot(spec: BundleSpec, dest: Path, cache: Path = CACHE) -> dict:
    """Resolve, download and unpack spec.packages (and their closure) into dest; returns
    the lock: every package with version, sha256 and size."""
    index = DebianIndex(spec.suite, spec.arch, spec.mirror, cache, spec.keyring)
    closure = resolve(index, list(spec.packages), spec.exclude)
    debs = cache / "debian" / "debs"
    dest.mkdir(parents=True, exist_ok=True)
    lock = []
    for p in closure:
        deb = fetch(f"{index.mirror}/{p['Filename']}", debs / Path(p["Filename"]).name, p["SHA256"])
        unpack_deb(deb, dest)
        lock.append(
            {
                "package": p["Package"],
                "version": p["Version"],
                "architecture": p["Architecture"],
                "sha256": p["SHA256"],
                "bytes": int(p["Size"]),
            }
        )
    for d in ("lib", "bin", "sbin", "lib64"):  # merged /usr: the packages ship usr/lib, ELF files name /lib
        if (dest / "usr" / d).is_dir() and not (dest / d).exists():
            (dest / d).symlink_to(f"usr/{d}")
    return {"suite": spec.suite, "mirror": index.mirror, "release_date": index.date, "packages": lock}
