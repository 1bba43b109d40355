"""The claims against existing works (time, energy and memory): the rule a claims file states for
them (which baselines count, whether the accuracy floor applies), the table that shows every
baseline both ways, and the configurations whose place above the floor depends on the seed.
Pure functions of the aggregated tables."""

from __future__ import annotations

import pandas as pd

from dyndnn.results.analysis import DYNAMIC, baseline_ranges, memory_by_baseline

__all__ = [
    "RULE_KEYS",
    "RULED",
    "RANGE_METRICS",
    "COLUMNS",
    "rule",
    "counted",
    "check_rule",
    "claim_baselines",
    "floor_in_doubt",
    "with_seed_means",
]

RULE_KEYS = {"baselines": "all", "accuracy_floor": True}  # a comparison with existing works: which count, and whether the floor applies


def rule(r) -> tuple[list[str] | None, bool]:
    """The claim's rule (config/claims.yaml): the baselines that count (None: every one trained)
    and whether only configurations at top-1 >= report.top1_floor count."""
    c = {**RULE_KEYS, **(r.get("claim") or {})}
    return (None if c["baselines"] == "all" else list(c["baselines"])), bool(c["accuracy_floor"])


def counted(table: pd.DataFrame, names: list[str] | None) -> pd.DataFrame:
    return table if names is None else table[table.baseline.isin(names)]


def floor_in_doubt(seeds: pd.DataFrame | None, floor: float, names: list[str] | None) -> str:
    """The configurations (of the dynamic DNN and the counted baselines `names`; None: all) that
    reach the accuracy floor in some training seeds only (from the seed summary `seeds`), named
    for the `noise` column; '' when every seed agrees or the run has one seed. The floor decides
    which configurations count, so a verdict resting on such a configuration rests on the seed
    spread."""
    if seeds is None or seeds.empty or not {"top1_min", "top1_max", "n_seeds"} <= set(seeds) or int(seeds.n_seeds.min()) < 2:
        return ""
    doubt = seeds[(seeds.top1_min < floor) & (seeds.top1_max >= floor)]
    if names is not None:
        doubt = doubt[doubt.model.isin([DYNAMIC, *names])]
    each = ", ".join(f"{d.model} at {int(d.groups)} group(s) ({100 * d.top1_min:.1f}-{100 * d.top1_max:.1f} %)" for d in doubt.itertuples())
    return f"at top-1 >= {floor:g} in some seeds only: {each}" if each else ""


def with_seed_means(table: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """`table` (operating points or accuracy) with each configuration's top-1 the mean over its
    seeds (from the seed summary `seeds`)."""
    means = seeds[["model", "groups", "top1_mean"]]
    m = table.reset_index(drop=True).merge(means, on=["model", "groups"], how="left")  # a left merge keeps the rows' order
    return m.assign(top1=m.pop("top1_mean").fillna(m["top1"]))


# The table of claims against existing works (report, summary block `baselines`).
COLUMNS = [
    "claim",
    "board",
    "baseline",
    "ours_all",
    "theirs_all",
    "ratio_all",
    "ours_floor",
    "theirs_floor",
    "ratio_floor",
    "usable",
    "counted",
]
RANGE_METRICS = {"time_range_vs_baselines": "p50_ms", "energy_range_vs_baselines": "energy_mj"}
RULED = (*RANGE_METRICS, "memory_vs_baselines")  # the claims against existing works: they take a rule


def check_rule(c: dict, label: str) -> None:
    for key in RULE_KEYS:
        if key in c and c["metric"] not in RULED:
            raise ValueError(f"{label}.{key}: only a claim against existing works ({', '.join(RULED)}) takes a rule")
    b = c.get("baselines", "all")
    if not (b == "all" or (isinstance(b, list) and b and all(isinstance(x, str) for x in b))):
        raise ValueError(f"{label}.baselines: 'all' or a list of technique names expected, got {b!r}")
    if not isinstance(c.get("accuracy_floor", True), bool):
        raise ValueError(f"{label}.accuracy_floor: true or false expected, got {c.get('accuracy_floor')!r}")


def claim_baselines(claims: list[dict], tables: dict) -> pd.DataFrame:
    """The claims against existing works, baseline by baseline, both ways: with every
    configuration and with only those at the accuracy floor; `counted` says which of the two the
    claim's rule reads, or that its rule leaves the baseline out. Ranges: ours / theirs; memory:
    our and their recoverable compression, and their resident bytes / ours where they reach ours."""
    rows, floor = [], tables["top1_floor"]
    for c in (c for c in claims if c["metric"] in RULED):
        names, use_floor = rule({"claim": c})
        how = "at the floor" if use_floor else "every configuration"
        status = lambda name, names=names, how=how: how if names is None or name in names else "not counted"  # noqa: E731
        if c["metric"] in RANGE_METRICS:
            for _, b in baseline_ranges(tables["operating_points"], RANGE_METRICS[c["metric"]], floor).iterrows():
                rows.append([c["id"], b.board, b.baseline, b.ours_all, b.theirs_all, b.ratio_all])
                rows[-1] += [b.ours_floor, b.theirs_floor, b.ratio_floor, b.usable, status(b.baseline)]
            continue
        for _, b in memory_by_baseline(tables["footprint"], tables["accuracy"], floor).iterrows():
            reach = lambda theirs, ours: b.resident_vs_dynamic if theirs >= ours * 0.999 else float("nan")  # noqa: E731, B023
            rows.append(
                [c["id"], "-", b.baseline, b.ours_compression_all, b.compression_all, reach(b.compression_all, b.ours_compression_all)]
            )
            rows[-1] += [
                b.ours_compression_floor,
                b.compression_floor,
                reach(b.compression_floor, b.ours_compression_floor),
                "",
                status(b.baseline),
            ]
    return pd.DataFrame(rows, columns=COLUMNS)
