"""Boards: their configs, how to reach them, and one profiling run on them.

Scope: load a board config (`config/boards/<name>.yaml`, schema-checked), open a
session on the board through its transport, copy the runner, the models and a
plan into a temporary work dir there, run it, copy the results back, and remove
the work dir (also on failure). The measurement itself is `runner.py`'s.
Failures name the board, the host and the step.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from dyndnn.config import read_yaml

__all__ = ["BoardError", "load_board", "LocalTransport", "TRANSPORTS", "profile_board"]

log = logging.getLogger(__name__)

RUNNER_FILES = ("runner.py", "power.py")  # what the board needs of dyndnn: no torch, no model code
RESULT_FILES = ("summary.csv", "samples.csv", "board.json")


class BoardError(RuntimeError):
    def __init__(self, board: str, host: str, step: str, detail: str):
        super().__init__(f"board '{board}' (host {host}): {step} failed: {detail}")
        self.board, self.host, self.step = board, host, step


def load_board(path: str | Path, schema_path: str | Path | None = None) -> dict:
    """Read a board YAML; validate it (and fill defaults) when a schema is given."""
    board = read_yaml(path)
    if schema_path is not None:
        from dyndnn.config import ConfigError, validate_schema

        try:
            validate_schema(board, schema_path)
        except ConfigError as e:
            raise ConfigError(f"board config {path}: {e}") from None
    expected = Path(path).stem
    if board.get("name") != expected:
        raise ValueError(f"board config {path}: name is {board.get('name')!r}, expected {expected!r} (the file name)")
    return board


class LocalTransport:
    """The host itself: a temporary work dir and subprocesses."""

    def __init__(self, board: dict):
        self.board = board
        self.host = platform.node() or "localhost"
        self.python = board["transport"].get("python") or sys.executable

    @contextmanager
    def session(self):
        workdir = tempfile.mkdtemp(prefix=f"dyndnn-{self.board['name']}-", dir=self.board["transport"].get("workdir"))
        try:
            yield LocalSession(workdir, self.python)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


class LocalSession:
    def __init__(self, workdir: str, python: str):
        self.workdir, self.python = workdir, python

    def put(self, src: str | Path, name: str) -> None:
        shutil.copyfile(src, os.path.join(self.workdir, name))

    def run(self, args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, *args], cwd=self.workdir, capture_output=True, text=True, timeout=timeout)

    def get(self, name: str, dest: str | Path) -> None:
        shutil.copyfile(os.path.join(self.workdir, name), dest)


TRANSPORTS = {"local": LocalTransport}


def _plan(board: dict, models: list[dict], settings: dict) -> dict:
    return {
        "models": [{"label": m["label"], "path": f"{m['label'].replace('/', '_')}.onnx"} for m in models],
        "mappings": [{"name": name, **spec} for name, spec in board["mappings"].items()],
        "settings": settings,
        "power": board.get("power", {"backend": "none", "rate_hz": 20}),
        "sysfs_root": board.get("sysfs_root", "/"),
        "input_shape": [1, 3, 32, 32],
    }


def profile_board(board: dict, models: list[dict], settings: dict, out_dir: str | Path, timeout_s: float | None = None) -> pd.DataFrame:
    """Measure every model on every mapping of `board`; write summary/samples/board facts to out_dir.

    `models`: [{"label": "dynamic/g1", "path": ".../g1.onnx", "model": "dynamic", "groups": 1}, ...].
    Results are staged in a temporary sibling of out_dir and moved in only when complete.
    """
    kind = board["transport"]["type"]
    if kind not in TRANSPORTS:
        raise BoardError(board["name"], "?", "connect", f"transport {kind!r} is not available (have {sorted(TRANSPORTS)})")
    transport = TRANSPORTS[kind](board)
    out_dir = Path(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir.parent))
    plan = _plan(board, models, settings)
    try:
        (staging / "plan.json").write_text(json.dumps(plan, indent=2))
        step = "connect"
        try:
            with transport.session() as s:
                step = "upload"
                for f in RUNNER_FILES:
                    s.put(Path(__file__).with_name(f), f)
                for m, p in zip(models, plan["models"]):
                    s.put(m["path"], p["path"])
                s.put(staging / "plan.json", "plan.json")
                step = "run"
                proc = s.run(["runner.py", "plan.json", "out"], timeout=timeout_s)
                if proc.returncode != 0:
                    log.error("runner stderr on %s:\n%s", board["name"], proc.stderr)
                    last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                    raise BoardError(board["name"], transport.host, step, f"runner exited {proc.returncode}: {last}")
                step = "download"
                for f in RESULT_FILES:
                    s.get(f"out/{f}", staging / f)
        except BoardError:
            raise
        except (OSError, subprocess.SubprocessError) as e:
            raise BoardError(board["name"], transport.host, step, str(e)) from e
        for name in ("summary.csv", "samples.csv"):
            table = _label_columns(pd.read_csv(staging / name), models)
            table.insert(0, "board", board["name"])
            table.to_csv(staging / name, index=False)
        summary = pd.read_csv(staging / "summary.csv")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _label_columns(df: pd.DataFrame, models: list[dict]) -> pd.DataFrame:
    """Turn the runner's opaque labels back into model / groups columns."""
    meta = pd.DataFrame([{"label": m["label"], "model": m["model"], "groups": m["groups"]} for m in models])
    return meta.merge(df, on="label", how="right").drop(columns="label")
