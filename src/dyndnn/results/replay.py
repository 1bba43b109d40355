"""Replay a record: re-render every figure and the report from its tables, no training.

Scope: verify the record and its tables' contract (`dyndnn.results.runs.load_run`), then call the same plotting and report
functions the pipeline's rules call, on the record's tables, into another folder.
"""

from __future__ import annotations

from pathlib import Path

from dyndnn.defaults import default
from dyndnn.results import plots
from dyndnn.results.figures import FIGURES
from dyndnn.results.record import RecordError, record_path
from dyndnn.results.report import report_from_files
from dyndnn.results.runs import load_run
from dyndnn.results.sections import TABLE_SECTIONS, load_tables

__all__ = ["replay"]


def replay(record: str | Path, out: str | Path, repo: str | Path) -> Path:
    """Re-render every figure and the report of a verified record into `out` (never into the
    record): the same plotting and report functions the pipeline's rules call, on the
    record's tables. Returns the report's path."""
    record, out, repo = Path(record), Path(out), Path(repo)
    if out.resolve() == record.resolve() or record.resolve() in out.resolve().parents:
        raise RecordError(f"replay output {out} is inside the record {record}: give another folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RecordError(
            f"replay output {out} exists and is not an empty folder: give a new or empty one "
            "(a replay never overwrites files, nor leaves stale ones beside its own)"
        )
    manifest = load_run(record).manifest  # verified, and every table held to its contract
    config = manifest["config"]

    def table(name: str, required: bool = True) -> str | None:  # only files the manifest lists and verified
        f = record_path(record, manifest, f"tables/{name}.csv", required)
        return str(f) if f else None

    inputs = {
        "accuracy": table("accuracy"),
        "latency_summary": table("latency_summary"),
        "latency_samples": table("latency_samples"),
        "operating_points": table("operating_points"),
        "ranges": table("ranges"),
        "footprint": table("footprint"),
        "boards": table("boards"),
        "dataset": str(record_path(record, manifest, "data/dataset.json")),
        "claims": str(record_path(record, manifest, "claims.yaml", required=False) or repo / "config/claims.yaml"),
        "template": str(repo / "report/templates/report.html.j2"),
    }
    for name in ("budget_trace", "budget_summary", *TABLE_SECTIONS):
        if table(name, required=False):
            inputs[name] = table(name)
    top1_floor = config["report"]["top1_floor"]
    reference = config["report"].get("reference")  # the record the run was set beside, where this checkout has it
    reference = str(repo / reference) if reference and (repo / reference / "manifest.json").is_file() else None
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    loaded = load_tables(inputs, top1_floor, reference)
    for name in FIGURES:
        plots.save(plots.PLOTS[name](loaded), str(figures / f"{name}.svg"), str(figures / f"{name}.png"))
    inputs["figures"] = [str(figures / f"{name}.png") for name in FIGURES]
    html = out / "report/index.html"
    report_from_files(
        inputs,
        str(html),
        config["report"]["title"],
        top1_floor,
        manifest.get("configfiles", []),
        max_others_share=config["profile"]["max_others_share"],
        max_median_spread=config["profile"]["max_median_spread"],
        max_control_spread=config["profile"].get("max_control_spread", default("profile", "max_control_spread")),  # older records lack it
        reference=reference,
    )
    return html
