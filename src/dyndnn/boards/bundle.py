"""Runtime bundles for ARM boards, cross-built on this host from packages.

Scope: everything a board needs to run the runner, for the board's architecture,
so that it needs no internet and no compiler: the runtime, the runner and the
models in one tarball that `profile_board` copies over and unpacks. Two sources:

* ``debian``: a self-contained sysroot of a Debian suite (interpreter, ONNX
  Runtime, numpy and every shared library they need). The chain of trust is
  Debian's: the suite's InRelease is checked with ``gpgv`` against the Debian
  archive keyring, the Packages index against InRelease's SHA256, every .deb
  against the index. Dependencies (Depends, Pre-Depends) are resolved here and
  the .debs unpacked without maintainer scripts. A launcher runs the bundled
  interpreter through the bundled dynamic loader, so the board's own userland
  (its glibc, its Python) does not matter; only its kernel does. This is the
  route for 32-bit ARM (Odroid XU3), where no ONNX Runtime wheel exists.
* ``pypi``: wheels for the board's own interpreter (JetPack 4: Python 3.6), fetched
  with ``pip download`` for the board's platform and Python ABI and installed with
  ``pip install --target``; the launcher puts them on the board's ``python3`` path.

Downloads go to a cache keyed by the hash of the package list (and source,
suite, architecture, Python); a rebuild with the same list downloads nothing.
Every download is retried with backoff and checked against its hash.

The launcher, ``run.sh``, is POSIX sh; ``$DYNDNN_EMULATOR`` (e.g.
``qemu-arm-static``) prefixes the interpreter, which is how the tests run a
bundle on x86 under user-mode emulation, and ``$DYNDNN_PYTHON`` overrides the
interpreter of a ``pypi`` bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dyndnn.provenance import sha256_file, write_atomic

__all__ = [
    "BundleError",
    "BundleSpec",
    "DebianIndex",
    "build_bundle",
    "build_runtime",
    "debian_sysroot",
    "launcher",
    "model_file",
    "parse_depends",
    "pypi_site",
    "resolve",
    "DEFAULT_MIRROR",
    "unpack_deb",
]

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------
# downloads


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


# ---------------------------------------------------------------------------
# Debian: signed index, dependency resolution, unpacking


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


# ---------------------------------------------------------------------------
# PyPI: wheels for the board's own interpreter


def _pip_target_args(spec: BundleSpec) -> list[str]:
    major, minor = (int(v) for v in spec.python.split(".")[:2])
    abi = f"cp{major}{minor}" + ("m" if (major, minor) < (3, 8) else "")
    platforms = {
        "arm64": ["manylinux2014_aarch64", "manylinux_2_17_aarch64", "linux_aarch64"],
        "armhf": ["linux_armv7l"],
        "amd64": ["manylinux2014_x86_64", "manylinux_2_17_x86_64"],
    }[spec.arch]
    args = [
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        f"{major}.{minor}",
        "--abi",
        abi,
        "--abi",
        "none",
        "--abi",
        "abi3",
    ]
    for p in platforms + ["any"]:
        args += ["--platform", p]
    return args


def pypi_site(spec: BundleSpec, dest: Path, cache: Path = CACHE) -> dict:
    """pip download (cached, retried by pip) and install --target for the board's platform."""
    wheels = cache / "pypi" / spec.key()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--retries", "5", "--timeout", "60"]
    if not (wheels / ".complete").exists():
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=_mkdir(wheels.parent)))
        proc = subprocess.run(
            [*pip, "download", "--dest", str(tmp), *_pip_target_args(spec), *spec.packages], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BundleError(f"pip download {' '.join(spec.packages)} for {spec.arch} / Python {spec.python} failed: {_tail(proc.stderr)}")
        (tmp / ".complete").write_text("")
        shutil.rmtree(wheels, ignore_errors=True)
        os.replace(tmp, wheels)
    files = sorted(p for p in wheels.iterdir() if p.suffix == ".whl")
    proc = subprocess.run(
        [*pip, "install", "--no-index", "--no-deps", "--no-compile", "--target", str(dest), *_pip_target_args(spec), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BundleError(f"pip install --target for {spec.arch} / Python {spec.python} failed: {_tail(proc.stderr)}")
    return {
        "index": "https://pypi.org/simple",
        "wheels": [{"file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in files],
    }


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "(no output)"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------
# the runtime (cached) and the bundle


DEBIAN_LAUNCHER = """#!/bin/sh
# dyndnn runtime bundle: {what}
# Runs the bundled interpreter through the bundled dynamic loader; the board's own
# libraries are not used. $DYNDNN_EMULATOR (e.g. qemu-arm-static) prefixes it.
here=$(cd "$(dirname "$0")" && pwd)
root="$here/root"
PYTHONHOME="$root/usr"
PYTHONNOUSERSITE=1
export PYTHONHOME PYTHONNOUSERSITE
exec $DYNDNN_EMULATOR "$root/{loader}" --library-path "{library_path}" "$root/usr/bin/python{python}" -s "$@"
"""

PYPI_LAUNCHER = """#!/bin/sh
# dyndnn runtime bundle: {what}
# Runs the board's own interpreter ({interpreter}; $DYNDNN_PYTHON overrides) with the
# bundled wheels first on its path. $DYNDNN_EMULATOR prefixes it.
here=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$here/site${{PYTHONPATH:+:$PYTHONPATH}}"
PYTHONNOUSERSITE=1
export PYTHONPATH PYTHONNOUSERSITE
exec $DYNDNN_EMULATOR ${{DYNDNN_PYTHON:-{interpreter}}} "$@"
"""


def _library_dirs(root: Path) -> list[str]:
    """Every folder of the sysroot holding shared libraries (Debian's alternatives, such as
    libblas.so.3 in usr/lib/<triplet>/blas, are postinst symlinks a plain unpack lacks)."""
    dirs = set()
    for base in ("lib", "usr/lib"):
        for p in (root / base).rglob("*.so*") if (root / base).is_dir() and not (root / base).is_symlink() else ():
            if "python3" not in p.parts and not any(part.startswith("python3.") for part in p.parts) and (p.is_file() or p.is_symlink()):
                dirs.add(p.parent.relative_to(root).as_posix())
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def build_runtime(spec: BundleSpec, cache: Path = CACHE) -> Path:
    """The runtime folder for spec (root/ or site/, and lock.json), built once per cache key."""
    if spec.arch not in ARCHES:
        raise BundleError(f"unknown architecture {spec.arch!r} (known: {sorted(ARCHES)})")
    final = cache / "runtime" / spec.key()
    if (final / "lock.json").exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=_mkdir(final.parent)))
    try:
        if spec.source == "debian":
            lock = debian_sysroot(spec, tmp / "root", cache)
            loader = ARCHES[spec.arch][1]
            python = tmp / "root" / "usr" / "bin" / f"python{spec.python}"
            if not (python.exists() or python.is_symlink()):
                found = sorted(p.name for p in (tmp / "root/usr/bin").glob("python3.*"))
                raise BundleError(
                    f"Debian {spec.suite} {spec.arch} gives {found or 'no Python'}, the board config says python {spec.python}"
                )
            if not (tmp / "root" / loader).exists():
                raise BundleError(f"no dynamic loader {loader} in the {spec.suite} {spec.arch} sysroot (is libc6 excluded?)")
            lock["loader"], lock["library_dirs"] = loader, _library_dirs(tmp / "root")
        elif spec.source == "pypi":
            lock = pypi_site(spec, tmp / "site", cache)
        else:
            raise BundleError(f"unknown bundle source {spec.source!r} (debian or pypi)")
        lock = {
            "key": spec.key(),
            "arch": spec.arch,
            "python": spec.python,
            "source": spec.source,
            "requested": list(spec.packages),
            **lock,
        }
        (tmp / "lock.json").write_text(json.dumps(lock, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def launcher(spec: BundleSpec, lock: dict) -> str:
    """run.sh for the bundle (written per bundle: the board's interpreter is not part of the cache key)."""
    what = f"{spec.source} {' '.join(spec.packages)} for {spec.arch}, Python {spec.python}"
    if spec.source == "debian":
        library_path = ":".join(f"$root/{d}" for d in lock["library_dirs"])
        return DEBIAN_LAUNCHER.format(what=what, loader=lock["loader"], library_path=library_path, python=spec.python)
    return PYPI_LAUNCHER.format(what=what, interpreter=spec.interpreter)


def model_file(label: str, path: str | Path) -> str:
    """The board-side file name of a model (labels carry a slash)."""
    return label.replace("/", "_") + Path(path).suffix


def _tree_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _add_bytes(tar: tarfile.TarFile, name: str, blob: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(blob), mode, int(time.time())
    tar.addfile(info, io.BytesIO(blob))


def build_bundle(
    board: dict, models: list[dict], runner_files: list[Path], out_tar: str | Path, out_manifest: str | Path, cache: Path = CACHE
) -> dict:
    """The board's bundle: runtime, runner and models in one tarball (top folder bundle/),
    with a manifest of what is inside; written atomically."""
    spec = BundleSpec.from_board(board)
    t0 = time.perf_counter()
    runtime = build_runtime(spec, cache)
    t_runtime = time.perf_counter() - t0
    lock = json.loads((runtime / "lock.json").read_text())
    manifest = {
        "board": board["name"],
        "runtime": lock,
        "runtime_bytes": _tree_bytes(runtime),
        "runner": {Path(f).name: sha256_file(Path(f)) for f in runner_files},
        "models": {
            m["label"]: {"file": f"models/{model_file(m['label'], m['path'])}", "sha256": sha256_file(Path(m["path"]))} for m in models
        },
        "launcher": "run.sh",
        "built_with": {"python": sys.version.split()[0], "runtime_seconds": round(t_runtime, 2)},
    }
    out_tar = Path(out_tar)
    out_tar.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_tar.name}.", dir=out_tar.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for sub in sorted(p.name for p in runtime.iterdir()):
                tar.add(runtime / sub, arcname=f"bundle/{sub}")
            _add_bytes(tar, "bundle/run.sh", launcher(spec, lock).encode(), 0o755)
            for f in runner_files:
                tar.add(f, arcname=f"bundle/{Path(f).name}")
            for m in models:
                tar.add(m["path"], arcname=f"bundle/models/{model_file(m['label'], m['path'])}")
            _add_bytes(tar, "bundle/bundle.json", json.dumps(manifest, indent=2).encode(), 0o644)
        manifest["bundle_bytes"] = os.path.getsize(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_tar)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    write_atomic(out_manifest, json.dumps(manifest, indent=2))
    return manifest
