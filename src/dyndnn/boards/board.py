"""Boards: their configs and how to reach them.

Scope: load a board config (`config/boards/<name>.yaml`, schema-checked) and open
a session on the board through its transport (local, or the OpenSSH client): put
a file into a temporary work dir there, run a command in it, get a file back, and
remove the work dir when the session ends (also on failure). What a profiling run
does with a session is `dyndnn.boards.profiling`'s; the measurement itself is
`runner.py`'s. Failures name the board, the host and the step.
"""

from __future__ import annotations

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

from dyndnn.config import ConfigError
from dyndnn.schema import read_yaml, validate_schema

__all__ = [
    "BoardError",
    "load_board",
    "check_board",
    "oversubscribed",
    "uses_bundle",
    "LocalTransport",
    "SshTransport",
    "TRANSPORTS",
    "last_line",
]

log = logging.getLogger(__name__)


class BoardError(RuntimeError):
    def __init__(self, board: str, host: str, step: str, detail: str):
        super().__init__(f"board '{board}' (host {host}): {step} failed: {detail}")
        self.board, self.host, self.step = board, host, step


def load_board(path: str | Path, schema_path: str | Path | None = None) -> dict:
    """Read a board YAML; validate it (and fill defaults) when a schema is given."""
    board = read_yaml(path)
    if schema_path is not None:
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
        cpus = m.get("cpus")
        if isinstance(cpus, list) and len(set(cpus)) != len(cpus):
            twice = sorted({c for c in cpus if cpus.count(c) > 1})
            raise ValueError(f"{where}: mapping {name} lists CPU {', '.join(map(str, twice))} more than once (cpus: {cpus})")
        runtime = m.get("runtime", board["runtime"])
        if runtime not in (board["runtime"], "tensorrt") or (runtime == "tensorrt" and board["runtime"] != "onnxruntime"):
            raise ValueError(
                f"{where}: mapping {name} runs {runtime!r}, but the board's models are exported for {board['runtime']!r} (a mapping may only add tensorrt, on an onnxruntime board)"
            )
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
    if t["type"] == "local" and hasattr(os, "sched_getaffinity"):  # this host: its CPUs are known at parse time
        host = sorted(os.sched_getaffinity(0))
        for name, m in board["mappings"].items():
            missing = sorted(set(m["cpus"]) - set(host)) if isinstance(m.get("cpus"), list) else []
            if missing:
                raise ValueError(
                    f"{where}: mapping {name} asks for CPUs {missing}, which this host does not offer (CPUs available: {host})"
                )
    if t["type"] == "ssh" and not t.get("host"):
        raise ValueError(f"{where}: ssh transport needs a host")
    b = board.get("bundle")
    if b and b.get("use", True):
        if b["source"] == "debian" and not b.get("suite"):
            raise ValueError(f"{where}: bundle source debian needs a suite (e.g. trixie)")
        if board["runtime"] != "onnxruntime":
            raise ValueError(f"{where}: bundles carry ONNX Runtime; runtime {board['runtime']!r} needs bundle.use: false")


def oversubscribed(board: dict, where: str) -> list[str]:
    """Warnings (legal, but the measurement would not mean what it says): a mapping with more
    intra-op threads than the CPUs it is pinned to times thread contention, not the network."""
    out = []
    for name, m in board["mappings"].items():
        cpus, threads = m.get("cpus"), m.get("threads", "cpus")
        if isinstance(cpus, list) and isinstance(threads, int) and threads > len(cpus):
            out.append(
                f"{where}: mapping {name} runs {threads} threads on {len(cpus)} CPU(s) {cpus}: the threads contend for the CPUs "
                "(threads: cpus gives one per CPU)"
            )
    return out


def uses_bundle(board: dict) -> bool:
    """Whether profile_board ships the board a runtime bundle (else its installed runtime is used)."""
    return bool(board.get("bundle")) and board["bundle"].get("use", True)


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

    def run(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run argv in the work dir (the environment is inherited: tests set DYNDNN_EMULATOR)."""
        return subprocess.run(argv, cwd=self.workdir, capture_output=True, text=True, timeout=timeout, check=False)

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
        bundle = board.get("bundle") if uses_bundle(board) else None
        # a board given a whole sysroot needs no interpreter of its own: probe the shell
        self.probe_argv = (
            ["uname", "-m"] if bundle and bundle["source"] == "debian" else [self.python, "-c", "import sys; print(sys.version_info[0])"]
        )

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
            session.workdir = session.check(
                ["mktemp", "-d", f"{parent.rstrip('/')}/dyndnn-{self.board['name']}-XXXXXX"], "make work dir"
            ).stdout.strip()
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

    def check(
        self, argv: list[str], step: str, timeout: float | None = None, input: bytes | None = None, decode: bool = True
    ) -> subprocess.CompletedProcess:
        """Run argv on the board; a failure raises BoardError naming `step`. stdout is text unless decode=False."""
        proc = self.call(argv, timeout=timeout or self.tr.timeout * 3, input=input)
        if proc.returncode != 0:
            raise BoardError(self.tr.board["name"], self.tr.host, step, last_line(proc.stderr))
        if decode:
            proc.stdout = proc.stdout.decode(errors="replace")
        return proc

    def probe(self) -> None:
        """Connect (bounded retries with backoff) and check the interpreter, before any upload."""
        last = ""
        for attempt in range(self.tr.retries):
            try:
                proc = self.call(self.tr.probe_argv, timeout=self.tr.timeout + 5)
            except subprocess.TimeoutExpired:
                last = f"no answer within {self.tr.timeout + 5:.0f} s"
            else:
                if proc.returncode == 0:
                    return
                last = last_line(proc.stderr)
                if proc.returncode != 255:  # ssh itself worked; the interpreter did not
                    break
            time.sleep(min(2**attempt, 5) * 0.5)
        raise BoardError(self.tr.board["name"], self.tr.host, f"probe ({attempt + 1} attempt(s))", last)

    def put(self, src: str | Path, name: str) -> None:
        with open(src, "rb") as f:
            data = f.read()
        # a bundle is tens of MB: allow 1 MB/s at least
        self.check(
            ["sh", "-c", 'cat > "$1"', "put", f"{self.workdir}/{name}"],
            f"upload {name}",
            timeout=max(self.tr.timeout * 3, len(data) / 1e6),
            input=data,
        )

    def run(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        remote = f"cd {shlex.quote(self.workdir)} && {shlex.join(argv)}"
        return subprocess.run(["ssh", *self.options, *self.target(), remote], capture_output=True, text=True, timeout=timeout, check=False)

    def get(self, name: str, dest: str | Path) -> None:
        Path(dest).write_bytes(self.check(["cat", f"{self.workdir}/{name}"], f"download {name}", decode=False).stdout)


def last_line(stderr: bytes | str) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


TRANSPORTS = {"local": LocalTransport, "ssh": SshTransport}
