"""Provenance stamped next to every table: code version, packages, host, config, data.

Scope: collect the facts and write a table with its `.meta.json` sidecar
atomically. No analysis.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

__all__ = [
    "PACKAGES",
    "git_state",
    "package_versions",
    "collect",
    "portable_config",
    "sha256_file",
    "sha256_tree",
    "write_atomic",
    "write_table",
    "read_meta",
]

PACKAGES = ("dyndnn", "snakemake", "torch", "torchvision", "onnx", "onnxruntime", "numpy", "pandas", "seaborn", "jinja2")


def git_state(repo_dir: str | Path) -> dict:
    """Commit and dirty flag of the checkout at repo_dir ('unknown' outside git)."""

    def git(*args):
        return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def package_versions(names=PACKAGES) -> dict:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def portable_config(config: dict) -> dict:
    """The config as a record states it: the data named by its file (the sha256 is in the
    dataset description), never by a path of the machine that ran it."""
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not data.get("path"):
        return config
    return {**config, "data": {**data, "path": Path(str(data["path"])).name}}


def collect(repo_dir: str | Path, config: dict | None = None, dataset: dict | None = None, **extra) -> dict:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(repo_dir),
        "packages": package_versions(),
        "host": {
            "node": platform.node(),
            "machine": platform.machine(),
            "system": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "config": portable_config(config or {}),
        "dataset": dataset or {},
        **extra,
    }


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks (the one checksum of archives, bundles and records)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(folder: str | Path) -> str:
    """sha256 of a folder's content: every entry's relative path with its file's sha256 (or its
    link target), in sorted order; what a folder of images is tracked by, as an archive by its
    sha256_file."""
    folder, h = Path(folder), hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            h.update(f"link {rel} -> {os.readlink(p)}\n".encode())
        elif p.is_file():
            h.update(f"file {rel} {sha256_file(p)}\n".encode())
    return h.hexdigest()


def _replace_or_clean(write, tmps: list[Path], targets: list[Path]) -> None:
    """Write the temporary files, then rename each onto its target; on any failure (a full disk,
    an interrupt) remove the temporary files, so that nothing half-written is left behind."""
    try:
        write()
        for tmp, target in zip(tmps, targets):
            os.replace(tmp, target)
    except BaseException as e:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise OSError(
                e.errno, f"no space left on the device writing {targets[0]}: free some space and rerun (finished jobs are kept)"
            ) from None
        raise


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary sibling, then rename: a reader never sees half a file, and a failed
    write leaves no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    _replace_or_clean(lambda: tmp.write_bytes(data.encode() if isinstance(data, str) else data), [tmp], [path])


def write_table(df: pd.DataFrame, path: str | Path, meta: dict) -> None:
    """CSV plus `<path minus .csv>.meta.json`, each written to a temp file and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    meta_path = meta_path_for(path)
    meta_tmp = meta_path.with_name(meta_path.name + ".tmp")

    def write() -> None:
        df.to_csv(tmp, index=False)
        meta_tmp.write_text(json.dumps({**meta, "rows": len(df), "columns": list(df.columns)}, indent=2, default=str))

    _replace_or_clean(write, [tmp, meta_tmp], [path, meta_path])


def meta_path_for(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(".csv") + ".meta.json")


def read_meta(path: str | Path) -> dict:
    return json.loads(meta_path_for(path).read_text())
