"""Gather per-job results into tidy tables under results/tables/, with provenance.

Scope: concatenation and labelling only; metrics are `analysis`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dyndnn import provenance
from dyndnn.results import analysis, latency

__all__ = ["concat_csv", "board_facts_table", "export_table", "aggregate", "job_times", "job_times_table"]


def _as_list(paths) -> list[str]:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def concat_csv(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in _as_list(paths)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def board_facts_table(paths) -> pd.DataFrame:
    """Long form: board, fact, value (one row per fact the runner recorded)."""
    rows = []
    for p in _as_list(paths):
        facts = json.loads(Path(p).read_text())
        board = Path(p).parent.name
        rows += [{"board": board, "fact": k, "value": json.dumps(v) if isinstance(v, (list, dict)) else v} for k, v in facts.items()]
    return pd.DataFrame(rows, columns=["board", "fact", "value"])


def export_table(paths) -> pd.DataFrame:
    """One row per exported graph (its manifest): model, groups, layout, MACs executed
    (counted from the graph), bytes, sha256, parity."""
    cols = ["model", "groups", "layout", "macs_executed", "bytes", "sha256", "parity_max_abs_diff"]
    rows = []
    for p in _as_list(paths):
        m = json.loads(Path(p).read_text())
        rows.append({**{c: m.get(c) for c in cols}, "parity_max_abs_diff": m["parity"]["max_abs_diff"]})
    return pd.DataFrame(rows, columns=cols)


def training_precision(inputs: dict) -> dict[str, list[str]]:
    """technique -> the precisions its training ran in (every seed's history; truncated, which
    trains nothing, has none)."""
    found: dict[str, set[str]] = {}
    for p in [*_as_list(inputs.get("seed_histories", inputs.get("histories", []))), *_as_list(inputs.get("baseline_histories", []))]:
        h = pd.read_csv(p)
        found.setdefault(Path(p).parents[1].name, set()).update(str(v) for v in h.get("precision", pd.Series(dtype=str)).dropna())
    return {name: sorted(v) for name, v in sorted(found.items())}


def aggregate(inputs: dict, outputs: dict, repo: str, config: dict, primary_seed: int = 0, models=None, designs=None) -> None:
    """Every table the figures and the report read. `accuracy` and `per_class` hold the
    primary seed (the models that were exported and measured); `accuracy_seeds` every
    seed, and `seed_summary` the mean and spread over seeds."""
    dataset = json.loads(Path(inputs["dataset"]).read_text())
    histories = {Path(p).parents[1].name: pd.read_csv(p) for p in _as_list(inputs.get("histories", []))}
    meta = provenance.collect(repo, config=config, dataset=dataset, training_precision=training_precision(inputs))
    evaluated, samples = concat_csv(inputs["eval"]), concat_csv(inputs["samples"])
    summary = latency.with_intervals(concat_csv(inputs["summary"]), samples)
    models = list(models) if models is not None else list(evaluated["model"].unique())
    every_seed = evaluated[evaluated["model"].isin(models)].reset_index(drop=True)
    accuracy = every_seed[every_seed["seed"] == primary_seed].reset_index(drop=True)
    designs = designs or {}
    primary = evaluated[evaluated["seed"] == primary_seed]  # ablation_table picks the designs and the static reference
    per_class = concat_csv(inputs["per_class"])
    exports = export_table(inputs.get("exports", []))
    derived = analysis.derived_tables(accuracy, summary, config["report"]["top1_floor"])
    measured = [*_as_list(inputs["eval"]), *_as_list(inputs["summary"])]
    tables = {
        "accuracy": (accuracy, inputs["eval"]),
        "accuracy_seeds": (every_seed, inputs["eval"]),
        "seed_summary": (analysis.seed_summary(every_seed), inputs["eval"]),
        "ablation": (
            analysis.ablation_table(primary, histories, designs),
            [*_as_list(inputs["eval"]), *_as_list(inputs.get("histories", []))],
        ),
        "per_class": (per_class[per_class["seed"] == primary_seed].reset_index(drop=True), inputs["per_class"]),
        "latency_summary": (summary, [*_as_list(inputs["summary"]), *_as_list(inputs["samples"])]),
        "latency_ratios": (latency.ratio_table(samples), inputs["samples"]),
        "latency_control": (
            latency.control_table(summary, exports),
            [*_as_list(inputs["summary"]), *_as_list(inputs["samples"]), *_as_list(inputs.get("exports", []))],
        ),
        "exports": (exports, inputs.get("exports", [])),
        "layouts": (analysis.layout_table(summary, exports), [*_as_list(inputs["summary"]), *_as_list(inputs.get("exports", []))]),
        "operating_points": (derived["operating_points"], measured),
        "ranges": (derived["ranges"], measured),
        "footprint": (derived["footprint"], inputs["eval"]),
        "latency_samples": (samples, inputs["samples"]),
        "boards": (board_facts_table(inputs["facts"]), inputs["facts"]),
    }
    for name, (df, sources) in tables.items():
        provenance.write_table(df, outputs[name], {**meta, "table": name, "sources": _as_list(sources)})


def job_times_table(paths) -> pd.DataFrame:
    """One row per job from its Snakemake benchmark file (results/benchmarks/<rule>/<what>.tsv):
    wall and CPU seconds, peak resident memory, mean load."""
    rows = []
    for p in _as_list(paths):
        p = Path(p)
        parts = p.parts[p.parts.index("benchmarks") + 1 :] if "benchmarks" in p.parts else (p.name,)
        b = pd.read_csv(p, sep="\t")
        last = b.iloc[-1]  # one line per run; a rerun job's benchmark holds its last run
        rows.append(
            {
                "job": parts[0].removesuffix(".tsv"),
                "target": "/".join(parts[1:]).removesuffix(".tsv"),
                "wall_s": float(last["s"]),
                "cpu_s": float(last["cpu_time"]) if "cpu_time" in b else float("nan"),
                "max_rss_mb": float(last["max_rss"]) if "max_rss" in b else float("nan"),
                "mean_load": float(last["mean_load"]) if "mean_load" in b else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["job", "target", "wall_s", "cpu_s", "max_rss_mb", "mean_load"])


def job_times(paths, out: str, repo: str) -> None:
    """The job_times rule: `job_times_table` with its provenance sidecar."""
    provenance.write_table(job_times_table(paths), out, {**provenance.collect(repo), "table": "job_times", "sources": _as_list(paths)})
