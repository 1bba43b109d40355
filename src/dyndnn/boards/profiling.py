"""One profiling run on a board: plan, upload, run, check, stage.

Scope: the plan the runner reads, the runtime bundle check, the upload (a bundle,
or the loose runner and models) through a board session (`dyndnn.boards.board`), the
checks of what comes back (result files complete, the board's outputs equal this
host's on fixed inputs), and the staging: results land in out_dir only when
complete. The measurement itself is `runner.py`'s.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from dyndnn.boards.board import TRANSPORTS, BoardError, last_line
from dyndnn.boards.bundle import model_file
from dyndnn.boards.onboard.runner import SAMPLE_FIELDS, SUMMARY_FIELDS
from dyndnn.config import MeasureSettings, as_params
from dyndnn.provenance import sha256_file

__all__ = [
    "profile_board",
    "check_bundle",
    "check_parity",
    "check_results",
    "host_outputs",
    "parity_inputs",
    "models_from_paths",
    "runner_files",
    "RUNNER_FILES",
]

log = logging.getLogger(__name__)

RUNNER_FILES = ("runner.py", "power.py", "dvfs.py")  # what the board needs of dyndnn: no torch, no model code
RESULT_FILES = ("summary.csv", "samples.csv", "board.json")


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
    return np.random.default_rng(seed + 1).standard_normal((n, 1, *shape)).astype(np.float32)


def host_outputs(path: str | Path, xs):
    """The reference outputs of one model on this host (ONNX Runtime, or torch for TorchScript)."""
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
    kind = board["transport"]["type"]
    if kind not in TRANSPORTS:
        raise BoardError(board["name"], "?", "connect", f"transport {kind!r} is not available (have {sorted(TRANSPORTS)})")
    transport = TRANSPORTS[kind](board)
    manifest = check_bundle(board, bundle, models) if bundle else None
    out_dir = Path(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir.parent))
    measure = MeasureSettings(**settings)  # the schema's defaults for what is not given
    plan = _plan(board, models, as_params(measure), prefix="bundle/models/" if bundle else "")
    xs = parity_inputs(measure.parity_images, measure.seed)
    try:
        (staging / "plan.json").write_text(json.dumps(plan, indent=2))
        np.save(staging / "parity_inputs.npy", xs)
        _run_on_board(transport, board, models, plan, staging, bundle, manifest, timeout_s)
        check_results(staging, plan, board, transport.host)
        diffs = check_parity(board, transport.host, models, xs, staging / "outputs.npz", measure.parity_atol)
        _finish_staging(staging, board, models, diffs, manifest)
        summary = pd.read_csv(staging / "summary.csv")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run_on_board(transport, board: dict, models: list[dict], plan: dict, staging: Path, bundle, manifest, timeout_s) -> None:
    """One session: upload (bundle, or the loose runner and models), run the runner on the
    plan, download its result files into `staging`; a failure names the step."""
    step = "connect"
    try:
        with transport.session() as s:
            step = "upload"
            command = _upload(s, board, transport, models, plan, bundle)
            # the runner starts its worker processes the way it was started (a bundle's launcher:
            # the board's own interpreter and libraries, or an emulator in the tests)
            (staging / "plan.json").write_text(json.dumps({**plan, "launch": command}, indent=2))
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
                raise BoardError(board["name"], transport.host, step, f"runner exited {proc.returncode}: {last_line(proc.stderr)}{hint}")
            step = "download"
            for f in (*RESULT_FILES, "outputs.npz"):
                s.get(f"out/{f}", staging / f)
    except BoardError:
        raise
    except (OSError, subprocess.SubprocessError) as e:
        raise BoardError(board["name"], transport.host, step, str(e)) from e


def _upload(s, board: dict, transport, models: list[dict], plan: dict, bundle) -> list[str]:
    """Put what the board runs into the session's work dir; the command that runs the runner."""
    if bundle:
        s.put(bundle, "bundle.tar.gz")
        proc = s.run(["tar", "-xzf", "bundle.tar.gz"], timeout=600)
        if proc.returncode != 0:
            raise BoardError(board["name"], transport.host, "unpack bundle", last_line(proc.stderr))
        return ["sh", "bundle/run.sh", "bundle/runner.py"]
    for f in runner_files():
        s.put(f, f.name)
    for m, p in zip(models, plan["models"]):
        s.put(m["path"], p["path"])
    return [s.python, "runner.py"]


def _finish_staging(staging: Path, board: dict, models: list[dict], diffs: dict, manifest: dict | None) -> None:
    """Record the parity and bundle in board.json, drop the parity files, and turn the
    runner's opaque labels back into board / model / groups columns."""
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


def models_from_paths(paths) -> list[dict]:
    """Exported model files (results/<format>/<model>/g<k>.<ext>) -> the models of a profiling run."""
    return [
        {"label": f"{Path(p).parent.name}/{Path(p).stem}", "path": str(p), "model": Path(p).parent.name, "groups": int(Path(p).stem[1:])}
        for p in paths
    ]


def runner_files() -> list[Path]:
    return [Path(__file__).parent / "onboard" / f for f in RUNNER_FILES]


def _label_columns(df: pd.DataFrame, models: list[dict]) -> pd.DataFrame:
    """Turn the runner's opaque labels back into model / groups columns."""
    meta = pd.DataFrame([{"label": m["label"], "model": m["model"], "groups": m["groups"]} for m in models])
    return meta.merge(df, on="label", how="right").drop(columns="label")
