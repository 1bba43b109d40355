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
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from dyndnn.config import read_yaml

__all__ = ["BoardError", "load_board", "check_board", "LocalTransport", "SshTransport", "TRANSPORTS", "profile_board"]

log = logging.getLogger(__name__)

RUNNER_FILES = ("runner.py", "power.py", "dvfs.py")  # what the board needs of dyndnn: no torch, no model code
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
    check_board(board, path)
    return board


def check_board(board: dict, where="board config") -> None:
    """Cross-field rules the schema cannot express."""
    domains = board.get("dvfs", {})
    for name, m in board["mappings"].items():
        if m.get("dvfs") and m["dvfs"] not in domains:
            raise ValueError(f"{where}: mapping {name} sweeps DVFS domain {m['dvfs']!r}, not defined under dvfs ({sorted(domains)})")
    pw = board.get("power", {})
    if pw.get("backend") in ("ina231", "ina3221"):
        if not pw.get("rails") or not pw.get("total"):
            raise ValueError(f"{where}: power backend {pw['backend']} needs 'rails' and 'total'")
        unknown = set(pw["total"]) - set(pw["rails"])
        if unknown:
            raise ValueError(f"{where}: power.total names unknown rails {sorted(unknown)}")
    t = board["transport"]
    if t["type"] == "ssh" and not t.get("host"):
        raise ValueError(f"{where}: ssh transport needs a host")


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


class SshTransport:
    """A remote board through the system OpenSSH client.

    Users' ~/.ssh/config, agents and jump hosts apply; host keys are checked
    (StrictHostKeyChecking=yes, never auto-accepted); BatchMode forbids password
    prompts. One ControlMaster connection serves every command of a session.
    Remote commands are argument lists joined with shlex.quote, never raw strings.
    """

    def __init__(self, board: dict):
        t = board["transport"]
        self.board, self.t = board, t
        self.host = t["host"]
        self.python = t.get("python", "python3")
        self.timeout = float(t.get("connect_timeout_s", 10))
        self.retries = int(t.get("retries", 3))

    def _options(self, control: str) -> list[str]:
        t = self.t
        opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"ConnectTimeout={int(self.timeout)}",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={control}", "-o", "ControlPersist=60",
                "-o", "ServerAliveInterval=15"]  # fmt: skip
        if t.get("known_hosts"):
            opts += ["-o", f"UserKnownHostsFile={t['known_hosts']}"]
        if t.get("ssh_config"):
            opts += ["-F", t["ssh_config"]]
        if t.get("identity"):
            opts += ["-i", t["identity"], "-o", "IdentitiesOnly=yes"]
        if t.get("user"):
            opts += ["-o", f"User={t['user']}"]
        return opts

    @contextmanager
    def session(self):
        local_tmp = tempfile.mkdtemp(prefix="dyndnn-ssh-")
        control = os.path.join(local_tmp, "cm")
        session = SshSession(self, self._options(control))
        try:
            session.probe()
            parent = self.t.get("workdir") or "/tmp"
            session.workdir = session.check(["mktemp", "-d", f"{parent.rstrip('/')}/dyndnn-{self.board['name']}-XXXXXX"], "make work dir").stdout.strip()
            yield session
        finally:
            if session.workdir:
                session.call(["rm", "-rf", session.workdir], timeout=self.timeout * 3)
            subprocess.run(["ssh", *session.options, "-O", "exit", *session.target()], capture_output=True, timeout=self.timeout)
            shutil.rmtree(local_tmp, ignore_errors=True)


class SshSession:
    def __init__(self, transport: SshTransport, options: list[str]):
        self.tr, self.options, self.workdir = transport, options, None
        self.python = transport.python

    def target(self) -> list[str]:
        port = self.tr.t.get("port")
        return [*(["-p", str(port)] if port else []), "--", self.tr.host]

    def call(self, argv: list[str], timeout: float | None = None, input: bytes | None = None) -> subprocess.CompletedProcess:
        remote = shlex.join(argv)
        return subprocess.run(["ssh", *self.options, *self.target(), remote], capture_output=True, timeout=timeout, input=input)

    def check(self, argv: list[str], step: str, timeout: float | None = None, input: bytes | None = None) -> subprocess.CompletedProcess:
        proc = self.call(argv, timeout=timeout or self.tr.timeout * 3, input=input)
        if proc.returncode != 0:
            raise BoardError(self.tr.board["name"], self.tr.host, step, _last_line(proc.stderr))
        proc.stdout = proc.stdout.decode(errors="replace")
        return proc

    def probe(self) -> None:
        """Connect (bounded retries with backoff) and check the interpreter, before any upload."""
        last = ""
        for attempt in range(self.tr.retries):
            try:
                proc = self.call([self.python, "-c", "import sys; print(sys.version_info[0])"], timeout=self.tr.timeout + 5)
            except subprocess.TimeoutExpired:
                last = f"no answer within {self.tr.timeout + 5:.0f} s"
            else:
                if proc.returncode == 0:
                    return
                last = _last_line(proc.stderr)
                if proc.returncode != 255:  # ssh itself worked; the interpreter did not
                    break
            time.sleep(min(2**attempt, 5) * 0.5)
        raise BoardError(self.tr.board["name"], self.tr.host, f"probe ({attempt + 1} attempt(s))", last)

    def put(self, src: str | Path, name: str) -> None:
        with open(src, "rb") as f:
            self.check(["sh", "-c", 'cat > "$1"', "put", f"{self.workdir}/{name}"], f"upload {name}", input=f.read())

    def run(self, args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        remote = f"cd {shlex.quote(self.workdir)} && {shlex.join([self.python, *args])}"
        proc = subprocess.run(["ssh", *self.options, *self.target(), remote], capture_output=True, text=True, timeout=timeout)
        return proc

    def get(self, name: str, dest: str | Path) -> None:
        proc = self.check(["cat", f"{self.workdir}/{name}"], f"download {name}")
        Path(dest).write_text(proc.stdout)


def _last_line(stderr: bytes | str) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


TRANSPORTS = {"local": LocalTransport, "ssh": SshTransport}


def _plan(board: dict, models: list[dict], settings: dict) -> dict:
    return {
        "models": [{"label": m["label"], "path": m["label"].replace("/", "_") + Path(m["path"]).suffix} for m in models],
        "runtime": board.get("runtime", "onnxruntime"),
        "mappings": [{"name": name, **spec} for name, spec in board["mappings"].items()],
        "settings": settings,
        "power": board.get("power", {"backend": "none", "rate_hz": 20}),
        "dvfs": board.get("dvfs", {}),
        "sysfs_root": board.get("sysfs_root", "/"),
        "input_shape": [1, 3, 32, 32],
        "lock": board.get("lock", "/tmp/dyndnn-board.lock"),
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
                    raise BoardError(board["name"], transport.host, step, f"runner exited {proc.returncode}: {_last_line(proc.stderr)}")
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
