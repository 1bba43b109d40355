"""A record in a few Markdown tables, for a README or a note: where it comes from (commit,
config files, sittings, host, precision), every technique's top-1 by configuration (the mean
over its training seeds) with its MACs and resident bytes, every claim's verdict, and the wall
time per rule. Every number is read from the record's verified files; nothing is typed by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from dyndnn.results.claims import evaluate_claims
from dyndnn.results.record import RecordError, record_path
from dyndnn.results.runs import load_run

__all__ = ["summarize"]


def _md(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (cells as given)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |\n| " + " | ".join("---" for _ in df.columns) + " |\n"
    return head + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def _provenance(path: Path, manifest: dict) -> str:
    sittings = manifest.get("sittings") or []
    host = manifest.get("host") or {}
    lines = [
        f"Record `{path}`: commit {manifest.get('git_commit')} ({'dirty' if manifest.get('git_dirty') else 'clean'}), "
        f"config files {', '.join(manifest.get('configfiles') or []) or '(config.yaml only)'}; wall time {manifest.get('wall_s')} s "
        f"in {len(sittings)} sitting(s); host {host.get('cpu_model', '?')} ({host.get('cpu_identity') or 'CPU identity unknown'}); "
        f"training precision {manifest.get('precision')}.",
        "",
    ]
    if sittings:
        rows = pd.DataFrame(
            [
                [
                    s.get("started"),
                    s.get("finished"),
                    s.get("wall_s"),
                    s.get("node"),
                    "bf16" if s.get("native_bf16") else "fp32",
                    s.get("outcome", ""),
                ]
                for s in sittings
            ],
            columns=["started", "finished", "wall_s", "node", "native precision", "outcome"],
        )
        lines.append(_md(rows))
    return "\n".join(lines)


def _accuracy(run) -> str:
    acc = run.tables["accuracy"]
    seeds = run.tables.get("seed_summary", pd.DataFrame())
    out = acc[["model", "groups", "top1", "macs", "resident_bytes"]].copy()
    if not seeds.empty:
        out = out.drop(columns="top1").merge(
            seeds[["model", "groups", "n_seeds", "top1_mean", "top1_std"]], on=["model", "groups"], how="left"
        )
        out["top-1 % (mean over seeds)"] = (100 * out.top1_mean).map("{:.2f}".format)
        out["seed std (pts)"] = (100 * out.top1_std).map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
        out = out.drop(columns=["top1_mean", "top1_std"])
    else:
        out["top-1 %"] = (100 * out.pop("top1")).map("{:.2f}".format)
    out["MMACs"] = (out.pop("macs") / 1e6).map("{:.1f}".format)
    out["resident MB"] = (out.pop("resident_bytes") / 1e6).map("{:.2f}".format)
    return _md(out)


def _claims(run) -> str:
    claims_file = run.claims_file()
    if claims_file is None:
        return "(the record ships no claims file)\n"
    claims = yaml.safe_load(claims_file.read_text())["claims"]
    verdicts = evaluate_claims(claims, {**run.tables, "top1_floor": run.top1_floor})
    shown = verdicts[["id", "paper", "ours", "unit", "verdict", "reason"]].copy()
    shown["ours"] = shown["ours"].map(_value)
    shown["reason"] = shown["reason"].map(lambda r: str(r).replace("|", "/"))
    return _md(shown)


def _value(v) -> str:
    """A claim's value as the report prints it: numbers to 3 significant digits, lists joined."""
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:.3g}"
    return "-" if v is None else str(v)


def _job_times(path: Path, manifest: dict) -> str:
    f = record_path(path, manifest, "tables/job_times.csv", required=False)
    if f is None or f.stat().st_size <= 1:
        return "(no job times in this record)\n"
    jobs = pd.read_csv(f)
    per_rule = jobs.groupby("job", sort=False).agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), max_rss_mb=("max_rss_mb", "max"))
    per_rule = per_rule.reset_index()
    per_rule["wall_s"] = per_rule.wall_s.map("{:.0f}".format)
    per_rule["max_rss_mb"] = per_rule.max_rss_mb.map("{:.0f}".format)
    return _md(per_rule)


def summarize(path: str | Path) -> str:
    """The record at `path` (verified against its manifest) as Markdown."""
    path = Path(path)
    run = load_run(path)
    if run.manifest is None:
        raise RecordError(f"{path}: not a record (no manifest.json): summarize a record, e.g. reference/quick")
    return "\n".join(
        [
            _provenance(path, run.manifest),
            "Top-1 on the test images by technique and configuration:\n",
            _accuracy(run),
            "Claims:\n",
            _claims(run),
            "Wall time per rule (the jobs' benchmark files):\n",
            _job_times(path, run.manifest),
        ]
    )
