"""Metrics and tidy tables: pure functions of DataFrames (no file I/O, no torch).

Definitions used throughout the report:
* dynamic range of a metric = max / min over the operating points a technique
  reaches at runtime (NaN when fewer than one positive value);
* latency summaries are medians and percentiles of the raw samples, never a
  lone mean.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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
    "footprint_table",
    "derived_tables",
    "seed_summary",
    "ablation_table",
    "evaluate_claims",
    "verdict",
    "check_claims",
]


def dynamic_range(values) -> float:
    """max / min of the positive, finite values; NaN when there are none."""
    v = np.asarray(pd.Series(values, dtype="float64").dropna(), dtype="float64")
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.max() / v.min()) if len(v) else float("nan")


def latency_summary(samples: pd.DataFrame) -> pd.DataFrame:
    """Per (board, model, groups, mapping, frequency): n, median, p90, p99, mean, std (ms)."""
    keys = ["board", "model", "groups", "mapping", "frequency"]
    if samples.empty:
        return pd.DataFrame(columns=[*keys, "n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms"])
    g = samples.groupby(keys, sort=True)["latency_ms"]
    out = pd.DataFrame(
        {
            "n": g.size(),
            "p50_ms": g.median(),
            "p90_ms": g.quantile(0.9),
            "p99_ms": g.quantile(0.99),
            "mean_ms": g.mean(),
            "std_ms": g.std(),
        }
    )
    return out.reset_index()


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
DYNAMIC = "dynamic"
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


# -- claims -------------------------------------------------------------------------
class NotMeasurable(Exception):
    """The results hold nothing that tests this claim; the message says why."""


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


def _dynamic(points_or_acc: pd.DataFrame) -> pd.DataFrame:
    return points_or_acc[points_or_acc["model"] == DYNAMIC]


def _require_baselines(accuracy):
    others = sorted(set(accuracy["model"]) - {DYNAMIC}) if not accuracy.empty else []
    if not others:
        raise NotMeasurable("no existing-work baseline was trained and measured in this run")
    return others


def _ranges(r, metric, what) -> pd.DataFrame:
    """The run's dynamic-range rows of `metric` (ranges table); NotMeasurable when none."""
    ranges = r["ranges"]
    ranges = ranges[ranges.metric == metric] if not ranges.empty else ranges
    if ranges.empty:
        raise NotMeasurable(f"no {what} measured on the boards used")
    return ranges


def _range_vs_baselines(metric, what):
    def compute(r):
        _require_baselines(r["accuracy"])
        ranges = _ranges(r, metric, what)
        ours = ranges[ranges.model == DYNAMIC]
        theirs = ranges[~ranges.model.isin([DYNAMIC, NAIVE])]
        if ours.empty or theirs.empty:
            raise NotMeasurable(f"{what} of the baselines or of the dynamic DNN is missing")
        merged = ours.merge(theirs, on="board", suffixes=("", "_base"))
        ratio = merged.range_with_mapping_dvfs / merged.range_with_mapping_dvfs_base
        best = merged.loc[ratio.idxmax()]
        return float(ratio.max()), f"dynamic DNN {what} range / {best.model_base}'s on {best.board}{_layout_note(r)}"

    return compute


def _layout_note(r) -> str:
    """Which exported layout the dynamic DNN's measured numbers come from."""
    layouts = r.get("layouts")
    if layouts is None or layouts.empty or "layout" not in layouts or layouts["layout"].isna().all():
        return ""
    return f" (dynamic DNN exported in the {'/'.join(sorted(layouts['layout'].dropna().unique()))} layout)"


def _mapping_dvfs_gain(metric, what):
    def compute(r):
        ranges = _dynamic(_ranges(r, metric, what))
        if ranges.empty:
            raise NotMeasurable(f"no {what} of the dynamic DNN measured on the boards used")
        best = ranges.loc[ranges.gain.idxmax()]
        return (
            float(best.gain),
            f"{what} range over all {int(best.points)} points / configurations alone on {best.board} ({best.range_with_mapping_dvfs:.3g}x vs {best.range_configs_alone:.3g}x){_layout_note(r)}",
        )

    return compute


def _memory_vs_baselines(r):
    _require_baselines(r["accuracy"])
    fp = r["footprint"].set_index("model")
    if fp["resident_bytes"].isna().any() or DYNAMIC not in fp.index:
        raise NotMeasurable("resident memory was not recorded for every technique")
    ours = fp.loc[DYNAMIC]
    if math.isnan(ours.recoverable_compression):
        raise NotMeasurable(
            f"the dynamic DNN never reaches top-1 >= {r['top1_floor']} (report.top1_floor), so it has no recoverable compression rate"
        )
    peers = fp.drop(index=DYNAMIC)
    same = peers[peers.recoverable_compression >= ours.recoverable_compression * 0.999]
    if same.empty:
        raise NotMeasurable("no baseline reaches the dynamic DNN's recoverable compression rate")
    ratio = same.resident_vs_dynamic
    each = ", ".join(f"{m} {v:.2f}x" for m, v in ratio.sort_values(ascending=False).items())
    short = sorted(set(peers.index) - set(same.index))
    below = f"; below that compression at top-1 >= {r['top1_floor']}: {', '.join(short)}" if short else ""
    return float(ratio.max()), f"resident bytes / dynamic DNN's at compression >= {ours.recoverable_compression:.3g}x: {each}{below}"


def _series(column):
    def compute(r):
        acc = _dynamic(r["accuracy"]).sort_values("groups")
        if acc.empty:
            raise NotMeasurable("no accuracy results for the dynamic DNN")
        return [float(v) for v in acc[column]], f"{column} for 1..{len(acc)} groups"

    return compute


def _pruning_speeds_up(device):
    def compute(r):
        pts = _dynamic(r["points"])
        pts = pts[pts["device"] == device] if not pts.empty else pts
        if pts.empty:
            raise NotMeasurable(f"no {device.upper()} mapping measured on the boards used")
        failures = []
        for key, g in pts.groupby(["board", "mapping", "frequency"]):
            lat = g.sort_values("groups")["p50_ms"].to_numpy()
            if not (lat[1:] > lat[:-1]).all():
                failures.append("/".join(map(str, key)))
        n = pts.groupby(["board", "mapping", "frequency"]).ngroups
        return not failures, (
            f"latency falls with every group removed on all {n} {device.upper()} mapping x frequency points"
            if not failures
            else f"not monotonic on {', '.join(failures)}"
        ) + _layout_note(r)

    return compute


def _pareto_points(r):
    pts = _dynamic(r["points"]).dropna(subset=["p50_ms", "top1"]) if not r["points"].empty else r["points"]
    if pts.empty:
        raise NotMeasurable("no latency measured on the boards used")
    counts = {board: int(pareto_mask(g, "p50_ms").sum()) for board, g in pts.groupby("board")}
    board = max(counts, key=counts.get)
    return counts[
        board
    ], f"Pareto-optimal (latency, top-1) points on {board} over {int((pts.board == board).sum())} operating points{_layout_note(r)}"


CLAIM_METRICS = {
    "energy_range_vs_baselines": _range_vs_baselines("energy_mj", "energy"),
    "time_range_vs_baselines": _range_vs_baselines("p50_ms", "latency"),
    "memory_vs_baselines": _memory_vs_baselines,
    "energy_range_mapping_dvfs_gain": _mapping_dvfs_gain("energy_mj", "energy"),
    "time_range_mapping_dvfs_gain": _mapping_dvfs_gain("p50_ms", "latency"),
    "top1_by_groups": _series("top1"),
    "confidence_by_groups": _series("confidence_norm"),
    "pruning_speeds_up_cpu": _pruning_speeds_up("cpu"),
    "pruning_speeds_up_gpu": _pruning_speeds_up("gpu"),
    "pareto_points_with_mapping_dvfs": _pareto_points,
}

HOLDS, FAILS, NOT_MEASURABLE = "holds", "does not hold", "not measurable"
CHECKS = ("at_least", "increasing", "true")


def check_claims(claims, where: str = "claims file") -> None:
    """Every claim names a known metric and check, with the keys the report reads; raises
    ValueError naming the file, the claim and the key (run before any job)."""
    if not isinstance(claims, list) or not claims:
        raise ValueError(f"{where}: expected a non-empty list under the key 'claims'")
    seen = set()
    for i, c in enumerate(claims):
        label = f"{where}: claims[{i}]" + (f" ({c.get('id')})" if isinstance(c, dict) and c.get("id") else "")
        if not isinstance(c, dict):
            raise ValueError(f"{label}: expected a mapping, got {c!r}")
        missing = [k for k in ("id", "claim", "source", "value", "metric", "check") if k not in c]
        if missing:
            raise ValueError(f"{label}: missing {', '.join(missing)}")
        if c["id"] in seen:
            raise ValueError(f"{label}: id {c['id']!r} appears twice")
        seen.add(c["id"])
        for key in ("id", "metric", "check"):
            if not isinstance(c[key], str):
                raise ValueError(f"{label}.{key}: a name expected, got {c[key]!r}")
        if c["metric"] not in CLAIM_METRICS:
            raise ValueError(f"{label}.metric: unknown metric {c['metric']!r} (known: {', '.join(sorted(CLAIM_METRICS))})")
        if str(c["check"]) not in CHECKS:
            raise ValueError(f"{label}.check: unknown check {c['check']!r} (known: {', '.join(CHECKS)})")
        if c["check"] == "at_least":
            try:
                value, tolerance = float(c["value"]), float(c.get("tolerance", 0))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{label}: check at_least needs a numeric value and tolerance, got value {c['value']!r}, tolerance {c.get('tolerance')!r}"
                ) from None
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{label}.value: {c['value']!r}: check at_least needs a finite value > 0 (a ratio the paper claims)")
            if not (math.isfinite(tolerance) and 0 <= tolerance < 1):
                raise ValueError(f"{label}.tolerance: {c.get('tolerance')!r}: a fraction in [0, 1) expected")


def verdict(claim: dict, value) -> str:
    """The verdict for one claim given our value (never called for unmeasurable ones)."""
    check = str(claim["check"])
    if check == "at_least":
        return HOLDS if value >= float(claim["value"]) * (1 - float(claim.get("tolerance", 0))) else FAILS
    if check == "increasing":
        return HOLDS if len(value) > 1 and all(b > a for a, b in zip(value, value[1:])) else FAILS
    if check == "true":
        return HOLDS if value else FAILS
    raise ValueError(f"claim {claim.get('id')}: unknown check {check!r}")


def evaluate_claims(claims: list[dict], tables: dict) -> pd.DataFrame:
    """One row per claim: our value, the verdict and a one-line reason. `tables`: the run's
    accuracy, points (operating points), ranges, footprint and top1_floor, and optionally
    layouts (whose layout column the latency claims' reasons name)."""
    results = {"layouts": None, **tables}
    rows = []
    for c in claims:
        if c["metric"] not in CLAIM_METRICS:
            raise ValueError(f"claim {c['id']}: unknown metric {c['metric']!r} (known: {sorted(CLAIM_METRICS)})")
        try:
            value, reason = CLAIM_METRICS[c["metric"]](results)
            v = verdict(c, value)
        except NotMeasurable as e:
            value, reason, v = None, str(e), NOT_MEASURABLE
        rows.append(
            {
                "id": c["id"],
                "claim": c["claim"],
                "source": c["source"],
                "paper": c["value"],
                "unit": c.get("unit", ""),
                "ours": value,
                "verdict": v,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows)
