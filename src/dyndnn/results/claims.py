"""The paper's claims checked against a run's tables: what each claim's metric computes
(`CLAIM_METRICS`), the checks a claims file may use, and the verdicts. Pure functions of the
tables that `analysis` derives (no file I/O, no torch)."""

from __future__ import annotations

import math

import pandas as pd

from dyndnn.results.analysis import DYNAMIC, baseline_ranges, memory_by_baseline, pareto_mask, pooled_std
from dyndnn.results.existing_works import check_rule, counted, floor_in_doubt, rule, with_seed_means

__all__ = [
    "evaluate_claims",
    "shown_verdict",
    "shown_reason",
    "WITHIN_NOISE",
    "verdict",
    "check_claims",
    "HOLDS",
    "FAILS",
    "NOT_MEASURABLE",
    "CLAIM_METRICS",
    "NotMeasurable",
]


class NotMeasurable(Exception):
    """The results hold nothing that tests this claim; the message says why."""


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


def _floor_noise(r, names, floor: bool, value: float, table: pd.DataFrame, value_of) -> str:
    """The `noise` of a claim against existing works: where configurations reach the floor in
    some seeds only and the claim's value changes when the seed means decide the floor
    (`value_of(table)` with each top-1 of `table` the seed mean), what they are and the other
    value; else ''."""
    doubt = floor_in_doubt(r.get("seed_summary"), r["top1_floor"], names) if floor else ""
    if not doubt:
        return ""
    try:
        other = value_of(with_seed_means(table, r["seed_summary"]))
    except NotMeasurable:
        return f"{doubt}; with the seed means at the floor: not measurable"
    return "" if math.isclose(other, value, rel_tol=1e-9) else f"{doubt}; with the seed means at the floor: {other:.3g}x"


def _range_vs_baselines(metric, what):
    def compute(r):
        _require_baselines(r["accuracy"])
        _ranges(r, metric, what)
        names, floor = rule(r)
        points = r["operating_points"]
        value, reason = _range_ratio(r, metric, what, names, floor, points)
        return value, reason, _floor_noise(r, names, floor, value, points, lambda t: _range_ratio(r, metric, what, names, floor, t)[0])

    return compute


def _range_ratio(r, metric, what, names, floor, points) -> tuple[float, str]:
    """The claim's value (the largest ratio over the counted baselines) and its reason, from
    `points` (the operating points, whose top-1 the floor reads)."""
    per = counted(baseline_ranges(points, metric, r["top1_floor"]), names)
    col, other = ("ratio_floor", "ratio_all") if floor else ("ratio_all", "ratio_floor")
    if floor and len(per) and per.ours_floor.isna().all():
        raise NotMeasurable(
            f"no configuration of the dynamic DNN reaches top-1 >= {r['top1_floor']:g} (report.top1_floor), so it has no usable range"
        )
    per = per[per[col].notna()]
    if per.empty:
        raise NotMeasurable(f"{what} of the baselines or of the dynamic DNN is missing, or no baseline keeps a configuration at the floor")
    best = per.loc[per[col].idxmax()]
    how = f"configurations at top-1 >= {r['top1_floor']:g}" if floor else "every configuration"
    alt = f"{'without' if floor else 'with'} the floor: {per[other].max():.3g}x"
    return float(best[col]), (
        f"dynamic DNN {what} range / {best.baseline}'s on {best.board}, {how} ({best.ours_floor if floor else best.ours_all:.3g}x vs "
        f"{best.theirs_floor if floor else best.theirs_all:.3g}x; {alt}){_layout_note(r)}"
    )


def _layout_note(r) -> str:
    """Which exported layout the dynamic DNN's measured numbers come from."""
    layouts = r.get("layouts")
    if layouts is None or layouts.empty or "layout" not in layouts or layouts["layout"].isna().all():
        return ""
    return f" (dynamic DNN exported in the {'/'.join(sorted(layouts['layout'].dropna().unique()))} layout)"


def _without_dvfs(r) -> bool:
    """True when no board used measured more than one frequency: a claim about DVFS cannot be
    tested there, whatever the mappings alone give."""
    pts = r["operating_points"]
    return pts.empty or not (pts["frequency"].astype(str) != "fixed").any()


def _needs_dvfs(r, partial: str):
    """Raise NotMeasurable (with what was measured as partial evidence) on boards without DVFS."""
    if _without_dvfs(r):
        raise NotMeasurable(f"needs DVFS levels; the boards used run at a fixed frequency (partial evidence, {partial})")


def _mapping_dvfs_gain(metric, what):
    def compute(r):
        ranges = _dynamic(_ranges(r, metric, what))
        if ranges.empty:
            raise NotMeasurable(f"no {what} of the dynamic DNN measured on the boards used")
        best = ranges.loc[ranges.gain.idxmax()]
        reason = f"{what} range over all {int(best.points)} points / configurations alone on {best.board} ({best.range_with_mapping_dvfs:.3g}x vs {best.range_configs_alone:.3g}x){_layout_note(r)}"
        _needs_dvfs(r, f"mapping alone: {best.gain:.3g}x, {reason}")
        return float(best.gain), reason

    return compute


def _memory_vs_baselines(r):
    _require_baselines(r["accuracy"])
    fp = r["footprint"].set_index("model")
    if fp["resident_bytes"].isna().any() or DYNAMIC not in fp.index:
        raise NotMeasurable("resident memory was not recorded for every technique")
    names, floor = rule(r)
    value, reason = _memory_ratio(r, names, floor, r["accuracy"])
    return value, reason, _floor_noise(r, names, floor, value, r["accuracy"], lambda t: _memory_ratio(r, names, floor, t)[0])


def _memory_ratio(r, names, floor, accuracy) -> tuple[float, str]:
    """The memory claim's value and reason from `accuracy` (whose top-1 the floor reads)."""
    per = counted(memory_by_baseline(r["footprint"], accuracy, r["top1_floor"]), names)
    theirs, ours = ("compression_floor", "ours_compression_floor") if floor else ("compression_all", "ours_compression_all")
    if per.empty or math.isnan(per[ours].iloc[0]):
        raise NotMeasurable(
            f"the dynamic DNN never reaches top-1 >= {r['top1_floor']} (report.top1_floor), so it has no recoverable compression rate"
        )
    target = per[ours].iloc[0]
    same = per[per[theirs] >= target * 0.999].set_index("baseline")
    if same.empty:
        raise NotMeasurable("no baseline reaches the dynamic DNN's recoverable compression rate")
    ratio = same.resident_vs_dynamic
    each = ", ".join(f"{m} {v:.2f}x" for m, v in ratio.sort_values(ascending=False).items())
    short = sorted(set(per.baseline) - set(same.index))
    at = f" at top-1 >= {r['top1_floor']}" if floor else " (every configuration)"
    below = f"; below that compression{at}: {', '.join(short)}" if short else ""
    return float(ratio.max()), f"resident bytes / dynamic DNN's at compression >= {target:.3g}x{at}: {each}{below}"


SEED_COLUMNS = {"top1": ("top1_mean", "top1_std"), "confidence_norm": ("confidence_mean", "confidence_std")}


def _seed_series(r, column) -> tuple[pd.Series, float] | None:
    """The dynamic DNN's `column` by groups as the mean over its training seeds, and its seed
    standard deviation pooled over the configurations (root mean variance of those with a spread);
    None with one seed."""
    seeds = r.get("seed_summary")
    if seeds is None or seeds.empty or "n_seeds" not in seeds:
        return None
    mine = _dynamic(seeds).sort_values("groups")
    if mine.empty or int(mine.n_seeds.min()) < 2:
        return None
    mean, std = SEED_COLUMNS[column]
    return mine.set_index("groups")[mean], pooled_std(mine, std)


def _series(column):
    """The series a rising claim tests: the mean over seeds where the run has several (noise: the
    steps smaller than the pooled seed std), else the primary seed's values (spread unknown)."""

    def compute(r):
        acc = _dynamic(r["accuracy"]).sort_values("groups")
        if acc.empty:
            raise NotMeasurable("no accuracy results for the dynamic DNN")
        seeded = _seed_series(r, column)
        if seeded is None:
            return [float(v) for v in acc[column]], f"{column} for 1..{len(acc)} groups (one seed: spread unknown)", ""
        means, std = seeded
        steps = means.diff().dropna()
        unit, scale = (" points", 100) if column == "top1" else ("", 1)
        shown = ", ".join(f"{scale * v:+.3g}" for v in steps)
        reason = f"{column}, mean of {int(_dynamic(r['seed_summary']).n_seeds.min())} seeds, for 1..{len(means)} groups: steps {shown}{unit}; seed std {scale * std:.3g}{unit}"
        small = int((steps.abs() < std).sum()) if math.isfinite(std) else 0
        return [float(v) for v in means], reason, (f"{small} of {len(steps)} steps smaller than the seed std" if small else "")

    return compute


def _overlapping_steps(r, device: str) -> int:
    """How many steps between consecutive configurations of the dynamic DNN have overlapping 95 %
    latency intervals (0 where the run has no intervals)."""
    s = r.get("latency_summary")
    if s is None or s.empty or not {"p50_lo_ms", "p50_hi_ms"} <= set(s):
        return 0
    s = _dynamic(s)
    s = s[s["device"] == device] if "device" in s else s
    n = 0
    for _, g in s.groupby(["board", "mapping", "frequency"]):
        g = g.sort_values("groups")
        n += int((g.p50_hi_ms.to_numpy()[:-1] >= g.p50_lo_ms.to_numpy()[1:]).sum())
    return n


def _pruning_speeds_up(device):
    def compute(r):
        pts = _dynamic(r["operating_points"])
        pts = pts[pts["device"] == device] if not pts.empty else pts
        if pts.empty:
            raise NotMeasurable(f"no {device.upper()} mapping measured on the boards used")
        failures = []
        for key, g in pts.groupby(["board", "mapping", "frequency"]):
            lat = g.sort_values("groups")["p50_ms"].to_numpy()
            if not (lat[1:] > lat[:-1]).all():
                failures.append("/".join(map(str, key)))
        n = pts.groupby(["board", "mapping", "frequency"]).ngroups
        overlaps = _overlapping_steps(r, device)
        return (
            not failures,
            (
                f"latency falls with every group removed on all {n} {device.upper()} mapping x frequency points"
                if not failures
                else f"not monotonic on {', '.join(failures)}"
            )
            + _layout_note(r),
            f"{overlaps} step(s) with overlapping 95 % latency intervals" if overlaps else "",
        )

    return compute


def _pareto_points(r):
    pts = _dynamic(r["operating_points"]).dropna(subset=["p50_ms", "top1"]) if not r["operating_points"].empty else r["operating_points"]
    if pts.empty:
        raise NotMeasurable("no latency measured on the boards used")
    counts = {board: int(pareto_mask(g, "p50_ms").sum()) for board, g in pts.groupby("board")}
    board = max(counts, key=counts.get)
    reason = f"Pareto-optimal (latency, top-1) points on {board} over {int((pts.board == board).sum())} operating points{_layout_note(r)}"
    _needs_dvfs(r, f"mapping alone: {counts[board]} {reason}")
    return counts[board], reason


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
        check_rule(c, label)
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


WITHIN_NOISE = ", within noise"


def shown_verdict(verdict: str, noise: str) -> str:
    """The verdict as people read it: ', within noise' where it rests on differences smaller than
    their seed spread or latency interval (the `noise` column says which)."""
    return verdict + WITHIN_NOISE if noise and verdict != NOT_MEASURABLE else verdict


def shown_reason(reason: str, noise: str) -> str:
    """The reason as people read it: what of the verdict lies within the noise, in brackets."""
    return reason + (f" ({noise})" if noise else "")


def evaluate_claims(claims: list[dict], tables: dict) -> pd.DataFrame:
    """One row per claim: our value, the verdict, a one-line reason and `noise` (what of the
    verdict lies within the seed spread or the latency intervals; '' where nothing does). `tables`: the run's
    accuracy, points (operating points), ranges, footprint and top1_floor, and optionally
    layouts (whose layout column the latency claims' reasons name)."""
    results = {"layouts": None, **tables}
    rows = []
    for c in claims:
        if c["metric"] not in CLAIM_METRICS:
            raise ValueError(f"claim {c['id']}: unknown metric {c['metric']!r} (known: {sorted(CLAIM_METRICS)})")
        noise = ""
        try:
            value, reason, *rest = CLAIM_METRICS[c["metric"]]({**results, "claim": c})
            noise = rest[0] if rest else ""
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
                "noise": noise,
            }
        )
    return pd.DataFrame(rows)
