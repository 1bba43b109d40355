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

Here: the PyPI site, the launchers, the cached runtime and the bundle. The Debian sysroot is
`dyndnn.boards.debian`'s; the spec, architectures, cache and downloads `dyndnn.boards.packages`'s.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from dyndnn.boards.debian import debian_sysroot
from dyndnn.boards.packages import (
    ARCHES,
    CACHE,
    BundleError,
    BundleSpec,
    _mkdir,
    _tail,
)
from dyndnn.provenance import sha256_file, write_atomic

__all__ = [
    "build_bundle",
    "build_runtime",
    "launcher",
    "model_file",
    "pypi_site",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# downloads


# ---------------------------------------------------------------------------
# Debian: signed index, dependency resolution, unpacking


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
