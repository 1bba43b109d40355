"""What the report shows, and the tables it and the figures read: per figure and per table its
heading, columns and prose, and the aggregated tables loaded by their one name (without the
report's rendering stack: a figure job imports this, the plots and pandas only)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dyndnn.results import analysis
from dyndnn.results.runs import load_run

__all__ = ["SECTIONS", "TABLE_SECTIONS", "load_tables", "figure_tables"]


SECTIONS = {  # figure -> (heading, table columns)
    "fig2_top1": (
        "Accuracy per configuration (paper Fig. 2)",
        ["model", "groups", "width_pct", "top1", "reference_top1", "macs", "layout", "macs_executed", "params", "weight_bytes", "n_images"],
    ),
    "fig3_confidence": (
        "Confidence per configuration (paper Fig. 3)",
        ["model", "groups", "confidence_sum", "confidence_norm", "reference_confidence_norm"],
    ),
    "fig4_latency": (
        "Inference time per configuration and mapping (paper Fig. 4)",
        [
            "board",
            "model",
            "groups",
            "mapping",
            "device",
            "frequency",
            "rounds",
            "n",
            "p50_ms",
            "p50_lo_ms",
            "p50_hi_ms",
            "p90_ms",
            "p99_ms",
            "mean_ms",
            "std_ms",
        ],
    ),
    "fig5_tradeoffs": (
        "Energy, power and time against accuracy (paper Fig. 5)",
        ["board", "model", "groups", "mapping", "frequency", "p50_ms", "power_w", "energy_mj", "top1", "pareto_time", "pareto_energy"],
    ),
    "dynamic_range": (
        "Dynamic range of time and energy",
        ["board", "model", "metric", "range_configs_alone", "range_with_mapping_dvfs", "gain", "points"],
    ),
    "budget_trace": (
        "Runtime managers on a changing budget",
        ["policy", "steps", "violations", "violation_rate", "mean_top1", "mean_latency_ms", "switches"],
    ),
    "memory_compression": (
        "Memory footprint and runtime-recoverable compression",
        ["model", "configs", "resident_bytes", "resident_vs_dynamic", "recoverable_compression", "top1_min", "top1_max", "top1_floor"],
    ),
}


TABLE_SECTIONS = {  # table without a figure -> (heading, columns, what it shows, what an empty table means)
    "techniques": (
        "Every technique and configuration",
        ["model", "groups", "width_pct", "top1", "confidence_norm", "macs", "params", "weight_bytes", "resident_bytes"],
        "Our dynamic DNN and the existing-work baselines (static: one dense model per width; slimmable: shared weights with a private BN "
        "per width; truncated: the 100 % static model cut at runtime; pruned: L1 filter pruning of it, fine-tuned) evaluated on the same "
        "test images (primary seed). confidence_norm is relative to the technique's own largest configuration; weight_bytes what one "
        "configuration runs with; resident_bytes what must be stored to serve all of a technique's configurations. The per-technique "
        "rows (footprint, recoverable compression, accuracy range) are the table under the memory figure above.",
        "No accuracy results in this run.",
    ),
    "seed_summary": (
        "Spread over training seeds",
        ["model", "groups", "n_seeds", "top1_mean", "top1_std", "top1_min", "top1_max", "confidence_mean", "confidence_std"],
        "Every technique trained and evaluated once per seed in the config's seeds list; mean, sample standard deviation, "
        "minimum and maximum of top-1 and normalised confidence. The figures above use the primary seed, whose models were exported and measured.",
        "No seed results in this run.",
    ),
    "layouts": (
        "Nested layers at their MAC cost: exported layouts",
        [
            "board",
            "mapping",
            "frequency",
            "groups",
            "layout",
            "dynamic_ms",
            "static_ms",
            "naive_ms",
            "dynamic_vs_static",
            "dynamic_vs_naive",
            "dynamic_macs_executed",
            "static_macs_executed",
            "naive_macs_executed",
        ],
        "Median single-image latency of the dynamic DNN in its shipped export layout (split: one op per output group over the input "
        "groups it reads, so only connected MACs run), of the static dense model of the same width, and of the same dynamic DNN exported "
        "with dense zero-block layers (naive reference, technique dynamic-dense), per board, mapping and DVFS level; ratios below 1 mean "
        "the dynamic DNN is faster. MACs executed are counted from each exported ONNX graph's Conv/Gemm/MatMul nodes.",
        "The exported layouts were not compared in this run (no board measured the dynamic DNN).",
    ),
    "job_times": (
        "Time per job",
        ["job", "target", "wall_s", "cpu_s", "max_rss_mb", "mean_load"],
        "Every job of this run before the report, from its Snakemake benchmark file: wall and CPU seconds, peak resident memory (MB) "
        "and mean CPU load (100 = one core busy). Training jobs dominate; their per-epoch images/s are in each job's history "
        "(results/models/*/seed*/*history.csv, shipped in the record). The run's sittings and host are in the record's manifest.",
        "No job times in this run.",
    ),
    "ablation": (
        "Ablation: what makes later groups count",
        [
            "design",
            "description",
            "head",
            "dropout",
            "frozen_dropout",
            "stage_epochs",
            "stage_lr",
            "distill",
            *[f"top1_g{k}" for k in range(1, 17)],
            *[f"confidence_g{k}" for k in range(1, 17)],
            "min_gain_pts",
            "vs_static_pts",
            "resident_bytes",
            "train_s",
        ],
        "Design variants of the dynamic DNN (config key ablation), each trained through every incremental stage with the same data and "
        "evaluated on the same test images (primary seed). min_gain_pts is the smallest top-1 gain, in points, of adding one group; "
        "vs_static_pts the all-groups model's top-1 minus the static 100 % model's (same data and epochs); "
        "resident_bytes what must be stored to serve every configuration (per-configuration heads included); train_s the summed epoch "
        "times of all stages (on whatever host trained it).",
        "No ablation designs in this run's config (key ablation).",
    ),
    "latency_ratios": (
        "Latency ratios with their intervals",
        ["board", "model", "mapping", "frequency", "g_small", "g_large", "ratio", "ratio_lo", "ratio_hi"],
        "Per technique and mapping: the smallest configuration's median latency over the largest's (g1/gG, what the time claims rest "
        "on), with its 95 % interval (ratio_lo, ratio_hi): a bootstrap over the measurement's rounds, the same rounds resampled for "
        "both configurations, so a slow round moves both.",
        "No latency rounds in this run (a record made before the interleaved rounds).",
    ),
    "latency_control": (
        "The instrument's negative control: techniques that run the same graph",
        ["board", "mapping", "frequency", "groups", "techniques", "min_ms", "max_ms", "spread"],
        "Techniques whose exported graphs are the same computation at a configuration (equal layout and executed MACs: the static "
        "widths, the slimmable and pruned networks' widths and the truncated model run the same dense layers) must time the same. "
        "spread = slowest / fastest median - 1 is what the instrument disagrees with itself by; the report warns above "
        "profile.max_control_spread.",
        "No two techniques ran the same graph in this run (it measured the dynamic DNN alone, or no board).",
    ),
}


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"frequency": str}) if Path(path).stat().st_size > 1 else pd.DataFrame()


def load_tables(inputs: dict, top1_floor: float, reference: str | None = None) -> dict:
    """The aggregated tables every figure and the report read (the derived ones, operating
    points, ranges and footprint, as the aggregate rule wrote them); with `reference` (a
    record, verified), its accuracy as `reference_accuracy`, which Figs. 2 and 3 overlay."""
    tables = {
        name: _read(inputs[name]) for name in ("accuracy", "latency_summary", "latency_samples", "operating_points", "ranges", "footprint")
    }
    tables["top1_floor"] = top1_floor
    if reference:
        tables["reference_accuracy"] = load_run(reference).tables["accuracy"]
    for name in ("budget_trace", "budget_summary", *TABLE_SECTIONS):
        if inputs.get(name):
            tables[name] = pd.read_csv(inputs[name])
    return tables


def _with_reference(t: dict) -> pd.DataFrame:
    """Figs. 2 and 3's table, with the reference record's top-1 and confidence beside ours
    when one is set."""
    ref = t.get("reference_accuracy")
    if ref is None or ref.empty or t["accuracy"].empty:
        return t["accuracy"]
    ref = ref[["model", "groups", "top1", "confidence_norm"]].rename(columns=lambda c: c if c in ("model", "groups") else f"reference_{c}")
    return t["accuracy"].merge(ref, on=["model", "groups"], how="left")


def figure_tables(t: dict) -> dict[str, pd.DataFrame]:
    """The table printed under each figure (same data the figure was drawn from)."""
    pts = t["operating_points"].copy()
    if not pts.empty:
        pts["pareto_time"] = False
        pts["pareto_energy"] = False
        for _, idx in pts.groupby(["board", "model"]).groups.items():
            pts.loc[idx, "pareto_time"] = analysis.pareto_mask(pts.loc[idx], "p50_ms")
            pts.loc[idx, "pareto_energy"] = analysis.pareto_mask(pts.loc[idx], "energy_mj")
    return {
        "fig2_top1": _with_reference(t),
        "fig3_confidence": _with_reference(t),
        "fig4_latency": analysis.latency_summary(t["latency_samples"]) if not t["latency_samples"].empty else pd.DataFrame(),
        "fig5_tradeoffs": pts,
        "dynamic_range": t["ranges"],
        "memory_compression": t["footprint"],
        "budget_trace": t.get("budget_summary", pd.DataFrame()),
    }
