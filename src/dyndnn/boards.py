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

from dyndnn.bundle import model_file
from dyndnn.config import read_yaml

__all__ = [
    "BoardError",
    "load_board",
    "check_board",
    "uses_bundle",
    "LocalTransport",
    "SshTransport",
    "TRANSPORTS",
    "profile_board",
    "check_results",
    "check_parity",
]

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
        runtime = m.get("runtime", board["runtime"])
        if runtime not in (board["runtime"], "tensorrt") or (runtime == "tensorrt" and board["runtime"] != "onnxruntime"):
            raise ValueError(f"{where}: mapping {name} runs {runtime!r}, but the board's models are exported for {board['runtime']!r} (a mapping may only add tensorrt, on an onnxruntime board)")
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
    b = board.get("bundle")
    if b and b.get("use", True):
        if b["source"] == "debian" and not b.get("suite"):
            raise ValueError(f"{where}: bundle source debian needs a suite (e.g. trixie)")
        if board["runtime"] != "onnxruntime":
            raise ValueError(f"{where}: bundles carry ONNX Runtime; runtime {board['runtime']!r} needs bundle.use: false")


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

    def check(self, argv: list[str], step: str, timeout: float | None = None, input: bytes | None = None, decode: bool = True) -> subprocess.CompletedProcess:
        """Run argv on the board; a failure raises BoardError naming `step`. stdout is text unless decode=False."""
        proc = self.call(argv, timeout=timeout or self.tr.timeout * 3, input=input)
        if proc.returncode != 0:
            raise BoardError(self.tr.board["name"], self.tr.host, step, _last_line(proc.stderr))
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
                last = _last_line(proc.stderr)
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


def _last_line(stderr: bytes | str) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


TRANSPORTS = {"local": LocalTransport, "ssh": SshTransport}


def _plan(board: dict, models: list[dict], settings: dict, prefix: str = "") -> dict:
    return {
        "models": [{"label": m["label"], "path": prefix + model_file(m["label"], m["path"])} for m in models],
        "runtime": board.get("runtime", "onnxruntime"),
        "mappings": [{"name": name, **spec} for name, spec in board["mappings"].items()],
        "settings": settings,
        "power": board.get("power", {"backend": "none", "rate_hz": 20}),
        "dvfs": board.get("dvfs", {}),
        "sysfs_root": board.get("sysfs_root", "/"),
        "input_shape": [1, 3, 32, 32],
        "lock": board.get("lock", "/tmp/dyndnn-board.lock"),
        "parity": {"inputs": "parity_inputs.npy", "output": "outputs.npz"},
        **({"tensorrt_cache": board["tensorrt_cache"]} if board.get("tensorrt_cache") else {}),
    }


def check_bundle(board: dict, bundle: str | Path, models: list[dict]) -> dict:
    """The bundle's manifest, checked against the models to measure (a stale bundle would
    measure other weights than the ones evaluated)."""
    from dyndnn.bundle import sha256_file

    manifest = json.loads(Path(bundle).with_name("bundle.json").read_text())
    if manifest["board"] != board["name"]:
        raise BoardError(board["name"], "-", "bundle", f"{bundle} was built for board {manifest['board']!r}")
    for m in models:
        entry = manifest["models"].get(m["label"])
        if entry is None or entry["sha256"] != sha256_file(Path(m["path"])):
            raise BoardError(
                board["name"],
                "-",
                "bundle",
                f"{bundle} does not carry the current {m['label']} ({m['path']}): rebuild it (rule bundle_board)",
            )
    return manifest


def parity_inputs(n: int, seed: int, shape=(3, 32, 32)):
    import numpy as np

    return np.random.default_rng(seed + 1).standard_normal((n, 1, *shape)).astype(np.float32)


def host_outputs(path: str | Path, xs):
    """The reference outputs of one model on this host (ONNX Runtime, or torch for TorchScript)."""
    import numpy as np

    if str(path).endswith(".onnx"):
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return np.concatenate([sess.run(None, {name: x})[0] for x in xs])
    import torch

    model = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x)).numpy() for x in xs])


def check_parity(board: dict, host: str, models: list[dict], xs, outputs_npz: str | Path, atol: float) -> dict:
    """Largest |board - host| output difference per model; BoardError above atol."""
    import numpy as np

    diffs = {}
    with np.load(outputs_npz) as got:
        for i, m in enumerate(models):
            ref = host_outputs(m["path"], xs)
            out = got[f"m{i}"]
            if out.shape != ref.shape:
                raise BoardError(board["name"], host, "parity", f"{m['label']}: board output shape {out.shape}, host {ref.shape}")
            diffs[m["label"]] = float(np.abs(out - ref).max())
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    if bad:
        raise BoardError(board["name"], host, "parity", f"board outputs differ from this host's beyond {atol:g}: {bad}")
    return diffs


def check_results(staging: Path, plan: dict, board: dict, host: str) -> None:
    """The runner's result files are complete and well-formed: every model on every
    measured mapping, sane latencies, the facts the report needs."""
    facts = json.loads((staging / "board.json").read_text())
    missing = {"machine", "python", "runtime", "runtime_version", "power_backend", "cpus_available"} - set(facts)
    summary, samples = pd.read_csv(staging / "summary.csv"), pd.read_csv(staging / "samples.csv")
    problems = [f"board.json lacks {sorted(missing)}"] if missing else []
    from dyndnn.runner import SAMPLE_FIELDS, SUMMARY_FIELDS

    for name, table, fields in (("summary.csv", summary, SUMMARY_FIELDS), ("samples.csv", samples, SAMPLE_FIELDS)):
        if list(table.columns) != fields:
            problems.append(f"{name} columns {list(table.columns)} != {fields}")
    if not problems:
        skipped = facts.get("skipped_note", "")
        for mapping in plan["mappings"]:
            rows = summary[summary["mapping"] == mapping["name"]]
            if rows.empty and f"mapping {mapping['name']} not measured" in skipped:
                continue
            labels = set(rows["label"])
            for m in plan["models"]:
                if m["label"] not in labels:
                    problems.append(f"no result for {m['label']} on mapping {mapping['name']}")
        if (summary["n"] < 1).any() or not (summary["p50_ms"] > 0).all():
            problems.append("summary has points without valid latencies")
        counts = samples.groupby(["label", "mapping", "frequency"]).size()
        want = summary.set_index(["label", "mapping", "frequency"])["n"]
        if not counts.reindex(want.index).fillna(0).astype(int).equals(want.astype(int)):
            problems.append("samples.csv does not hold n samples for every summary point")
    if problems:
        raise BoardError(board["name"], host, "result check", "; ".join(problems[:5]))


def profile_board(
    board: dict, models: list[dict], settings: dict, out_dir: str | Path, timeout_s: float | None = None, bundle: str | Path | None = None
) -> pd.DataFrame:
    """Measure every model on every mapping of `board`; write summary/samples/board facts to out_dir.

    `models`: [{"label": "dynamic/g1", "path": ".../g1.onnx", "model": "dynamic", "groups": 1}, ...].
    `bundle`: the board's runtime bundle (rule bundle_board), copied over and unpacked
    instead of the loose runner and models; its launcher runs the runner.
    The board's outputs on fixed inputs are checked against this host's (settings
    parity_images, parity_atol), and the result files are checked before they count.
    Results are staged in a temporary sibling of out_dir and moved in only when complete.
    """
    import numpy as np

    kind = board["transport"]["type"]
    if kind not in TRANSPORTS:
        raise BoardError(board["name"], "?", "connect", f"transport {kind!r} is not available (have {sorted(TRANSPORTS)})")
    transport = TRANSPORTS[kind](board)
    manifest = check_bundle(board, bundle, models) if bundle else None
    out_dir = Path(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir.parent))
    plan = _plan(board, models, settings, prefix="bundle/models/" if bundle else "")
    xs = parity_inputs(int(settings.get("parity_images", 8)), int(settings.get("seed", 0)))
    try:
        (staging / "plan.json").write_text(json.dumps(plan, indent=2))
        np.save(staging / "parity_inputs.npy", xs)
        step = "connect"
        try:
            with transport.session() as s:
                step = "upload"
                if bundle:
                    s.put(bundle, "bundle.tar.gz")
                    step = "unpack bundle"
                    proc = s.run(["tar", "-xzf", "bundle.tar.gz"], timeout=600)
                    if proc.returncode != 0:
                        raise BoardError(board["name"], transport.host, step, _last_line(proc.stderr))
                    command = ["sh", "bundle/run.sh", "bundle/runner.py"]
                else:
                    for f in runner_files():
                        s.put(f, f.name)
                    for m, p in zip(models, plan["models"]):
                        s.put(m["path"], p["path"])
                    command = [s.python, "runner.py"]
                s.put(staging / "plan.json", "plan.json")
                s.put(staging / "parity_inputs.npy", "parity_inputs.npy")
                step = "run"
                proc = s.run([*command, "plan.json", "out"], timeout=timeout_s)
                if proc.returncode != 0:
                    log.error("runner stderr on %s:\n%s", board["name"], proc.stderr)
                    hint = (
                        f" (bundle for {manifest['runtime']['arch']}: does it match the board?)"
                        if manifest and proc.returncode in (126, 127)
                        else ""
                    )
                    raise BoardError(
                        board["name"], transport.host, step, f"runner exited {proc.returncode}: {_last_line(proc.stderr)}{hint}"
                    )
                step = "download"
                for f in (*RESULT_FILES, "outputs.npz"):
                    s.get(f"out/{f}", staging / f)
        except BoardError:
            raise
        except (OSError, subprocess.SubprocessError) as e:
            raise BoardError(board["name"], transport.host, step, str(e)) from e
        check_results(staging, plan, board, transport.host)
        diffs = check_parity(board, transport.host, models, xs, staging / "outputs.npz", float(settings.get("parity_atol", 1e-4)))
        facts = json.loads((staging / "board.json").read_text())
        facts["parity_max_abs_diff"] = diffs
        facts["bundle"] = (
            {"arch": manifest["runtime"]["arch"], "source": manifest["runtime"]["source"], "bytes": manifest.get("bundle_bytes")}
            if manifest
            else None
        )
        (staging / "board.json").write_text(json.dumps(facts, indent=2))
        for name in ("parity_inputs.npy", "outputs.npz"):
            (staging / name).unlink()
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


def models_from_paths(paths) -> list[dict]:
    """Exported model files (results/<format>/<model>/g<k>.<ext>) -> the models of a profiling run."""
    return [{"label": f"{Path(p).parent.name}/{Path(p).stem}", "path": str(p), "model": Path(p).parent.name, "groups": int(Path(p).stem[1:])} for p in paths]


def runner_files() -> list[Path]:
    return [Path(__file__).with_name(f) for f in RUNNER_FILES]


def _label_columns(df: pd.DataFrame, models: list[dict]) -> pd.DataFrame:
    """Turn the runner's opaque labels back into model / groups columns."""
    meta = pd.DataFrame([{"label": m["label"], "model": m["model"], "groups": m["groups"]} for m in models])
    return meta.merge(df, on="label", how="right").drop(columns="label")
