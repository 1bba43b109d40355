"""Metrics and tidy tables: pure functions of DataFrames (no file I/O, no torch).

Definitions used throughout the report:
* dynamic range of a metric = max / min over the operating points a technique
  reaches at runtime (NaN when fewer than one positive value);
* latency summaries are medians and percentiles of the raw samples, never a
  lone mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dyndnn.arch import DYNAMIC
from dyndnn.results import latency

__all__ = [
    "DYNAMIC",
    "NAIVE",
    "dynamic_range",
    "latency_summary",
    "top_frequency",
    "median_spread",
    "operating_points",
    "layout_table",
    "pareto_mask",
    "range_table",
    "ranges_table",
    "baseline_ranges",
    "memory_by_baseline",
    "footprint_table",
    "derived_tables",
    "seed_summary",
    "pooled_std",
    "ablation_table",
]


def dynamic_range(values) -> float:
    """max / min of the positive, finite values; NaN when there are none."""
    v = np.asarray(pd.Series(values, dtype="float64").dropna(), dtype="float64")
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.max() / v.min()) if len(v) else float("nan")


def latency_summary(samples: pd.DataFrame) -> pd.DataFrame:
    """Per (board, model, groups, mapping, frequency): rounds, n, the median with its 95 %
    interval, p90, p99, mean and std (ms): `latency.summary`."""
    return latency.summary(samples)


def top_frequency(points: pd.DataFrame) -> pd.DataFrame:
    """Each (board, mapping)'s rows at its highest DVFS level (or its fixed one)."""
    freq = pd.to_numeric(points["frequency"], errors="coerce")
    top = freq.groupby([points["board"], points["mapping"]]).transform("max")
    return points[top.isna() | (freq == top)]


def median_spread(samples: pd.DataFrame, parts: int = 3) -> pd.DataFrame:
    """Per measured point: the medians of `parts` consecutive slices of its timed runs, and
    their spread (max - min) / overall median: how much the point's median moved while it was
    measured (host load, thermal throttling); NaN with fewer than 2 runs per slice."""
    keys = ["board", "model", "groups", "mapping", "frequency"]
    rows = []
    for key, g in samples.groupby(keys, sort=True):
        v = g.sort_values("run_idx")["latency_ms"].to_numpy()
        chunks = [c for c in np.array_split(v, parts) if len(c) >= 2]
        meds = [float(np.median(c)) for c in chunks]
        spread = (max(meds) - min(meds)) / float(np.median(v)) if len(meds) == parts else float("nan")
        rows.append({**dict(zip(keys, key)), "median_spread": spread})
    return pd.DataFrame(rows, columns=[*keys, "median_spread"])


# -- operating points, Pareto fronts, dynamic ranges --------------------------------
# The dynamic DNN exported with dense zero-block layers: measured as the naive reference
# of the shipped layout, never a technique of its own (same weights, same accuracy).
NAIVE = "dynamic-dense"


def operating_points(accuracy: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per measured (board, model, groups, mapping, frequency) with its accuracy,
    median latency, power and energy per inference (NaN where not measured)."""
    cols = ["board", "model", "groups", "mapping", "device", "frequency", "p50_ms", "power_w", "energy_mj"]
    if summary.empty or accuracy.empty:
        return pd.DataFrame(columns=[*cols, "top1", "confidence_norm", "macs"])
    s = summary.copy()
    for c in ("device", "power_w", "energy_mj"):
        if c not in s:
            s[c] = "cpu" if c == "device" else float("nan")
    s["frequency"] = s["frequency"].astype(str)
    acc = accuracy[["model", "groups", "top1", "confidence_norm", "macs"]]
    acc = pd.concat([acc, acc[acc.model == DYNAMIC].assign(model=NAIVE)], ignore_index=True)  # same network, other layout
    return s[cols].merge(acc, on=["model", "groups"], how="left")


def layout_table(summary: pd.DataFrame, exports: pd.DataFrame) -> pd.DataFrame:
    """Per (board, mapping, frequency, groups): median latency of the dynamic DNN in its
    shipped layout, of the static dense model of the same width and of the dynamic DNN
    in the dense-with-zeros layout (the naive reference), their ratios, and the MACs each
    exported graph executes (counted from the graph)."""
    keys = ["board", "mapping", "frequency", "groups"]
    names = {DYNAMIC: "dynamic", "static": "static", NAIVE: "naive"}
    cols = [
        *keys,
        "layout",
        *[f"{n}_ms" for n in names.values()],
        "dynamic_vs_static",
        "dynamic_vs_naive",
        *[f"{n}_macs_executed" for n in names.values()],
    ]
    if summary.empty or DYNAMIC not in set(summary["model"]):
        return pd.DataFrame(columns=cols)
    s = summary[summary.model.isin(names)].assign(frequency=lambda d: d.frequency.astype(str))
    wide = (
        s.pivot_table(index=keys, columns="model", values="p50_ms", aggfunc="first")
        .rename(columns=lambda m: f"{names[m]}_ms")
        .reset_index()
    )
    for n in names.values():
        if f"{n}_ms" not in wide:
            wide[f"{n}_ms"] = float("nan")
    wide["dynamic_vs_static"] = wide.dynamic_ms / wide.static_ms
    wide["dynamic_vs_naive"] = wide.dynamic_ms / wide.naive_ms
    if not exports.empty:
        macs = exports[exports.model.isin(names)].pivot_table(index="groups", columns="model", values="macs_executed", aggfunc="first")
        for m, n in names.items():
            wide[f"{n}_macs_executed"] = wide.groups.map(macs[m]) if m in macs else float("nan")
        layout = exports[exports.model == DYNAMIC].groupby("groups")["layout"].first()
        wide["layout"] = wide.groups.map(layout)
    return wide.reindex(columns=cols)


def pareto_mask(df: pd.DataFrame, cost: str, benefit: str = "top1") -> pd.Series:
    """True for points no other point beats (lower-or-equal cost and higher-or-equal
    benefit, one strictly). NaN costs are never on the front."""
    d = df[[cost, benefit]].astype(float)
    ok = d[cost].notna() & d[benefit].notna()
    mask = pd.Series(False, index=df.index)
    values = d[ok].to_numpy()
    for idx, (c, b) in zip(d[ok].index, values):
        dominated = ((values[:, 0] <= c) & (values[:, 1] >= b) & ((values[:, 0] < c) | (values[:, 1] > b))).any()
        mask[idx] = not dominated
    return mask


def range_table(points: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (board, model): the dynamic range of `metric` from the configurations alone
    (the widest over any one mapping x frequency: conservative for the gain) and with
    mapping + DVFS (over every measured point), and their ratio."""
    rows = []
    d = points.dropna(subset=[metric])
    for (board, model), g in d.groupby(["board", "model"]):
        alone = max(dynamic_range(h[metric]) for _, h in g.groupby(["mapping", "frequency"]))
        combined = dynamic_range(g[metric])
        rows.append(
            {
                "board": board,
                "model": model,
                "metric": metric,
                "range_configs_alone": alone,
                "range_with_mapping_dvfs": combined,
                "gain": combined / alone,
                "points": len(g),
            }
        )
    return pd.DataFrame(rows, columns=["board", "model", "metric", "range_configs_alone", "range_with_mapping_dvfs", "gain", "points"])


METRICS = ("p50_ms", "energy_mj")  # what the dynamic-range table covers


def ranges_table(points: pd.DataFrame) -> pd.DataFrame:
    """range_table for time and energy, one table (the aggregate rule writes it once)."""
    return pd.concat([range_table(points, m) for m in METRICS], ignore_index=True)


def _configs_range(g: pd.DataFrame, metric: str) -> float:
    """A technique's dynamic range over its configurations: the widest over any one mapping x
    frequency (1.0 with one configuration, NaN with none)."""
    spans = [dynamic_range(h[metric]) for _, h in g.groupby(["mapping", "frequency"]) if h[metric].notna().any()]
    return max(spans) if spans else float("nan")


def baseline_ranges(points: pd.DataFrame, metric: str, top1_floor: float) -> pd.DataFrame:
    """Per board and existing-work baseline: the dynamic range of `metric` over the configurations
    of the dynamic DNN and of the baseline, with every configuration and with only those whose
    top-1 reaches the accuracy floor (what a runtime manager could use), and ours / theirs both
    ways. The range claims against existing works read it (their rule picks the column)."""
    cols = ["board", "baseline", "metric", "ours_all", "theirs_all", "ratio_all", "ours_floor", "theirs_floor", "ratio_floor", "usable"]
    d = points.dropna(subset=[metric]) if not points.empty else points
    rows = []
    for board, b in d.groupby("board") if not d.empty else ():
        ours = b[b.model == DYNAMIC]
        if ours.empty:
            continue
        ours_all, ours_floor = _configs_range(ours, metric), _configs_range(ours[ours.top1 >= top1_floor], metric)
        for model, g in b[~b.model.isin([DYNAMIC, NAIVE])].groupby("model"):
            usable = g[g.top1 >= top1_floor]
            theirs_all, theirs_floor = _configs_range(g, metric), _configs_range(usable, metric)
            rows.append(
                [board, model, metric, ours_all, theirs_all, ours_all / theirs_all, ours_floor, theirs_floor, ours_floor / theirs_floor]
                + [f"{usable.groups.nunique()} of {g.groups.nunique()}"]
            )
    return pd.DataFrame(rows, columns=cols)


def memory_by_baseline(footprint: pd.DataFrame, accuracy: pd.DataFrame, top1_floor: float) -> pd.DataFrame:
    """Per existing-work baseline: its resident bytes over the dynamic DNN's, and whether it
    reaches the dynamic DNN's recoverable compression with every configuration and at the accuracy
    floor (the memory claim compares footprints at the same compression rate)."""
    cols = ["baseline", "resident_vs_dynamic", "compression_all", "ours_compression_all", "compression_floor", "ours_compression_floor"]
    if footprint.empty or DYNAMIC not in set(footprint.model):
        return pd.DataFrame(columns=cols)
    every = footprint_table(accuracy, 0.0).set_index("model").recoverable_compression
    fp = footprint.set_index("model")
    rows = [
        [m, fp.resident_vs_dynamic[m], every[m], every[DYNAMIC], fp.recoverable_compression[m], fp.recoverable_compression[DYNAMIC]]
        for m in fp.index
        if m not in (DYNAMIC, NAIVE)
    ]
    return pd.DataFrame(rows, columns=cols)


def derived_tables(accuracy: pd.DataFrame, summary: pd.DataFrame, top1_floor: float) -> dict[str, pd.DataFrame]:
    """The tables computed from accuracy and measurements, once (the aggregate rule writes them;
    figures, report, claims and `dyndnn compare` read them)."""
    points = operating_points(accuracy, summary)
    return {"operating_points": points, "ranges": ranges_table(points), "footprint": footprint_table(accuracy, top1_floor)}


def footprint_table(accuracy: pd.DataFrame, top1_floor: float) -> pd.DataFrame:
    """Per technique: bytes resident to serve every configuration, and the runtime
    recoverable compression rate = the largest MAC reduction (full / smallest) reachable
    at runtime, undone without retraining, at top-1 >= top1_floor."""
    rows = []
    for model, g in accuracy.groupby("model"):
        g = g.sort_values("groups")
        full = g.iloc[-1]
        ok = g[g.top1 >= top1_floor]
        rows.append(
            {
                "model": model,
                "configs": len(g),
                "resident_bytes": float(g["resident_bytes"].max()) if "resident_bytes" in g else float("nan"),
                "recoverable_compression": float(full.macs / ok.macs.min()) if not ok.empty else float("nan"),
                "top1_min": float(g.top1.min()),
                "top1_max": float(g.top1.max()),
                "top1_floor": top1_floor,
            }
        )
    fp = pd.DataFrame(rows)
    ours = fp.loc[fp.model == DYNAMIC, "resident_bytes"]
    fp["resident_vs_dynamic"] = fp.resident_bytes / ours.iloc[0] if len(ours) else float("nan")
    return fp


def pooled_std(rows: pd.DataFrame, column: str) -> float:
    """A technique's seed spread pooled over its configurations (root mean variance): three seeds
    per configuration give an unsteady std each (measured on the quick config: 0.1 to 2.5
    points for the same technique), their pool a steady one. A configuration whose value is
    fixed by definition (normalised confidence at G groups, std 0) does not count."""
    if column not in rows:
        return float("nan")
    v = pd.to_numeric(rows[column], errors="coerce")
    v = v[v.notna() & (v > 0)]
    return float((v**2).mean() ** 0.5) if len(v) else float("nan")


def seed_summary(every_seed: pd.DataFrame) -> pd.DataFrame:
    """Per technique and configuration: mean, sample std, min and max over training seeds
    of top-1 and normalised confidence (std is NaN with one seed)."""
    stats = every_seed.groupby(["model", "groups"], sort=False).agg(
        n_seeds=("seed", "nunique"),
        top1_mean=("top1", "mean"),
        top1_std=("top1", "std"),
        top1_min=("top1", "min"),
        top1_max=("top1", "max"),
        confidence_mean=("confidence_norm", "mean"),
        confidence_std=("confidence_norm", "std"),
    )
    return stats.reset_index()


def ablation_table(evaluated: pd.DataFrame, histories: dict[str, pd.DataFrame], designs: dict[str, dict]) -> pd.DataFrame:
    """One row per design of the dynamic DNN: top-1 and normalised confidence at every
    configuration, the smallest top-1 gain of adding one group (points), resident bytes,
    and training time (sum of the stages' epoch times from the training history); with the
    static baseline evaluated, the G-group model's gap to the static 100 % model (points)."""
    rows = []
    static = evaluated[evaluated["model"] == "static"].sort_values("groups")
    for technique, knobs in designs.items():
        ev = evaluated[evaluated["model"] == technique].sort_values("groups")
        if ev.empty:
            continue
        top1 = ev["top1"].to_numpy()
        row = {"design": technique, **knobs}
        row.update({f"top1_g{k}": v for k, v in zip(ev["groups"], top1)})
        row.update({f"confidence_g{k}": v for k, v in zip(ev["groups"], ev["confidence_norm"])})
        row["min_gain_pts"] = float(100 * (top1[1:] - top1[:-1]).min()) if len(top1) > 1 else float("nan")
        row["vs_static_pts"] = float(100 * (top1[-1] - static["top1"].iloc[-1])) if not static.empty else float("nan")
        row["resident_bytes"] = int(ev["resident_bytes"].iloc[0])
        history = histories.get(technique)
        row["train_s"] = float(history["epoch_s"].sum()) if history is not None and "epoch_s" in history else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
