"""A run's record: what a reviewer needs to see, replay and compare a run without training.

Scope: collect a finished run's small outputs (tables with their provenance, per-model
evaluations, each board's summary, facts and raw samples, Snakemake benchmark files, the
report) into a record folder with a `manifest.json` (commit, config as run, start and
finish, wall seconds, host, training precision, sha256 of every file); verify a record
against its manifest. No torch and no plotting: the Snakefile imports this module at
every DAG parse. Replaying a record is `dyndnn.results.replay`'s, comparing two `dyndnn.results.compare`'s.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path

from dyndnn.boards.onboard.runner import NATIVE_BF16_FLAGS, cpu_identity
from dyndnn.provenance import git_state, portable_config, write_atomic
from dyndnn.provenance import sha256_file as sha256

__all__ = [
    "RecordError",
    "MANIFEST",
    "GZIP_OVER",
    "mark_started",
    "mark_finished",
    "read_sittings",
    "make_record",
    "verify",
    "listed",
    "record_path",
    "host_facts",
]

MANIFEST = "manifest.json"
SITTINGS = "sittings.json"  # one entry per invocation: the Snakefile's onstart / onsuccess / onerror handlers
RUN_STARTED = "run_started.json"  # the single start of results made before sittings were recorded
RECORD_VERSION = 2  # 2: host and boards carry their CPU identity (runner.cpu_identity), sittings, precision per technique
READABLE_VERSIONS = (1, RECORD_VERSION)
GZIP_OVER = 1 << 20  # raw samples above 1 MiB are shipped gzipped


class RecordError(ValueError):
    """A record is missing, incomplete or does not match its manifest (the file is named)."""


def host_facts() -> dict:
    """CPU model and identity (ISA flags), cores and memory of this host."""
    cpu, mem = platform.processor() or platform.machine(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "node": platform.node(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "machine": platform.machine(),
        "system": platform.platform(),
        **cpu_identity(),  # vendor/family/model/stepping and the ISA flags that decide speed and precision
    }


def _declared(path: Path, declared: set[str]) -> bool:
    """A declared input, or the provenance sidecar (.meta.json) its job wrote beside a declared table."""
    if path.name.endswith(".meta.json"):
        return str(path.with_name(path.name.removesuffix(".meta.json") + ".csv")) in declared
    return str(path) in declared


def _record_files(results: Path, declared: set[str] | None = None) -> list[tuple[Path, str]]:
    """(source, path in the record) of everything a record ships; no weights, no ONNX. With
    `declared` (the record rule's inputs), only those and their sidecars: the rule reads
    nothing it does not declare."""
    picks = []
    for pattern in (
        "tables/*.csv",
        "tables/*.meta.json",
        "eval/seed*/*.csv",
        "profile/*/summary.csv",
        "profile/*/board.json",
        "profile/*/samples.csv",
        "benchmarks/**/*.tsv",
        "data/dataset.json",
        "report/index.html",
        "models/*/seed*/*history.csv",
    ):
        picks += sorted(p for p in results.glob(pattern) if p.is_file() and (declared is None or _declared(p, declared)))
    return [(p, str(p.relative_to(results))) for p in picks]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _last_activity(results: Path) -> datetime | None:
    """When the newest file under results/ was written: the end of a sitting that was killed."""
    times = [p.stat().st_mtime for p in results.rglob("*") if p.is_file() and p.name != SITTINGS]
    return datetime.fromtimestamp(max(times), timezone.utc) if times else None


def read_sittings(results: str | Path) -> list[dict]:
    """The sittings of a results folder (oldest first); a folder from before sittings were
    recorded gives its one start."""
    results = Path(results)
    if (results / SITTINGS).is_file():
        return json.loads((results / SITTINGS).read_text())
    if (results / RUN_STARTED).is_file():
        return [{"started": json.loads((results / RUN_STARTED).read_text())["started"]}]
    return []


def _write_sittings(results: Path, sittings: list[dict]) -> None:
    write_atomic(results / SITTINGS, json.dumps(sittings, indent=1) + "\n")


def mark_started(results: str | Path, code: str | Path = ".") -> None:
    """A new sitting of the pipeline on this results folder (the Snakefile's onstart): when, on
    which host (CPU identity: the ISA flags that decide the training precision), with which
    commit of the code at `code` (a run moved to a newer commit between sittings, e.g. to measure
    again with a changed instrument, says so). A sitting that was killed without its end handler
    is closed at its last written file."""
    results = Path(results)
    sittings = read_sittings(results)
    if sittings and not sittings[-1].get("finished"):
        last = _last_activity(results)
        sittings[-1].update(finished=_iso(last) if last else sittings[-1]["started"], outcome="interrupted (end: its last file written)")
    cpu = cpu_identity()
    git = git_state(code)
    sittings.append(
        {
            "started": _iso(_now()),
            "commit": git["commit"],
            "dirty": git["dirty"],
            "node": platform.node(),
            "cpu_identity": cpu["cpu_identity"],
            "cpu_isa": cpu["cpu_isa"],
            "native_bf16": bool(NATIVE_BF16_FLAGS & set(cpu["cpu_isa"].split())),
        }
    )
    _write_sittings(results, sittings)


def mark_finished(results: str | Path, outcome: str) -> None:
    """The end of this sitting (the Snakefile's onsuccess / onerror)."""
    results = Path(results)
    sittings = read_sittings(results)
    if sittings and not sittings[-1].get("finished"):
        sittings[-1].update(finished=_iso(_now()), outcome=outcome)
        _write_sittings(results, sittings)


def _closed(sittings: list[dict], now: datetime) -> list[dict]:
    """Every sitting with its seconds; the open one (this sitting, making the record) ends now."""
    out = []
    for s in sittings:
        end = datetime.fromisoformat(s["finished"]) if s.get("finished") else now
        out.append({**s, "finished": _iso(end), "wall_s": round((end - datetime.fromisoformat(s["started"])).total_seconds(), 1)})
    return out


def make_record(
    results: str | Path,
    out: str | Path,
    config: dict,
    configfiles: list[str],
    git: dict,
    precision: list[str],
    claims: str | Path | None = None,
    declared: list[str] | None = None,
) -> dict:
    """Copy a finished run's record files from `results` into `out` (replaced whole, written
    in a sibling folder first), with the claims file the report was checked against, and
    write its manifest; returns the manifest. `declared`: the record rule's input files, the
    only ones it ships (with their sidecars)."""
    results, out = Path(results), Path(out)
    finished = _now()
    sittings = _closed(read_sittings(results), finished)
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        manifest = _stage(results, staging, declared, claims, sittings, finished, config, configfiles, git, precision)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed record leaves nothing half-made behind
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return manifest


def _stage(results: Path, staging: Path, declared, claims, sittings, finished, config, configfiles, git, precision) -> dict:
    """Copy the record's files into `staging` and write its manifest there; returns the manifest."""
    files = {}
    for src, rel in _record_files(results, {str(Path(f)) for f in declared} if declared is not None else None):
        dst = staging / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("samples.csv") and src.stat().st_size > GZIP_OVER:
            dst = dst.with_name(dst.name + ".gz")
            with open(src, "rb") as f, gzip.GzipFile(dst, "wb", mtime=0) as g:
                shutil.copyfileobj(f, g)
        else:
            shutil.copyfile(src, dst)
        files[str(dst.relative_to(staging))] = sha256(dst)
    if claims is not None:
        shutil.copyfile(claims, staging / "claims.yaml")
        files["claims.yaml"] = sha256(staging / "claims.yaml")
    manifest = {
        "record_version": RECORD_VERSION,
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "config": portable_config(config),
        "configfiles": [c if not Path(c).is_absolute() else Path(c).name for c in configfiles],
        "started": sittings[0]["started"] if sittings else None,
        "finished": _iso(finished),
        "wall_s": round(sum(s["wall_s"] for s in sittings), 1) if sittings else None,  # the sittings' sum
        "sittings": sittings,
        "host": host_facts(),
        "precision": precision,
        "files": dict(sorted(files.items())),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


NEEDED = ("tables/accuracy.csv", "tables/latency_summary.csv", "tables/latency_samples.csv", "tables/boards.csv", "data/dataset.json")


def _manifest(path: Path) -> dict:
    """The manifest's JSON, its shape checked: one line naming what is wrong."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"{path}: malformed manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise RecordError(f"{path}: malformed manifest (a JSON object expected, got {type(manifest).__name__})")
    files, config = manifest.get("files"), manifest.get("config")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise RecordError(f"{path}: malformed manifest ('files' must map each relative path to its sha256)")
    if not isinstance(config, dict):
        raise RecordError(f"{path}: malformed manifest (no 'config' object: the config the run was made with)")
    version = manifest.get("record_version", 1)  # records before versions were written are version 1
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise RecordError(
            f"{path}: record_version {version!r} is not one this dyndnn reads ({', '.join(map(str, READABLE_VERSIONS))}); "
            "a newer dyndnn made it, or it was edited"
        )
    return manifest


def _inside(record: Path, rel: str, manifest_path: Path) -> Path:
    """record / rel, refused unless rel is a plain relative path that stays inside the record
    (no absolute path, no '..', no link leading out)."""
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts or "\\" in rel:
        raise RecordError(f"{manifest_path}: file entry {rel!r} is not a relative path inside the record")
    f = record / rel
    if f.is_symlink() or record.resolve() not in f.resolve().parents:
        raise RecordError(f"{manifest_path}: file entry {rel!r} leads outside the record (a link?)")
    return f


def verify(record: str | Path) -> dict:
    """The record's manifest, after checking that every listed path stays inside the record,
    every listed file's sha256, and that nothing the tables need is missing; raises
    RecordError naming the file. Readers then open files through `record_path` only."""
    record = Path(record)
    path = record / MANIFEST
    if not path.is_file():
        raise RecordError(f"{path}: no manifest (is {record} a record made by the pipeline's record rule?)")
    manifest = _manifest(path)
    for rel, digest in manifest["files"].items():
        f = _inside(record, rel, path)
        if not f.is_file():
            raise RecordError(f"{f}: listed in {path} but missing")
        got = sha256(f)
        if got != digest:
            raise RecordError(f"{f}: sha256 {got} does not match the manifest's {digest} (the file was changed after the run)")
    for needed in NEEDED:
        if listed(manifest, needed) is None:
            raise RecordError(f"{record / needed}: missing from the record (not in {path})")
    return manifest


def listed(manifest: dict, rel: str) -> str | None:
    """The manifest's name of file `rel`: itself, or `rel.gz` where the record rule shipped it
    gzipped; None when the record does not list it."""
    files = manifest["files"]
    return rel if rel in files else f"{rel}.gz" if f"{rel}.gz" in files else None


def record_path(record: str | Path, manifest: dict, rel: str, required: bool = True) -> Path | None:
    """The verified file of a record for `rel` (its `.gz` where shipped gzipped: pandas reads
    either); an unlisted file is never read (RecordError, or None when not `required`)."""
    name = listed(manifest, rel)
    if name is None:
        if required:
            raise RecordError(f"{Path(record) / rel}: not listed in {Path(record) / MANIFEST} (an unlisted file is never read)")
        return None
    return Path(record) / name
