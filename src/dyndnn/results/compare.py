"""Compare a run against a reference record, number by number.

Scope: read two runs (a record folder with a manifest, verified first, or a pipeline's
`results/` folder), and give one row per compared number with the reference's value,
the run's, the difference, the tolerance and a status: reproduced, differs, inconclusive (a
latency whose interval straddles the tolerance) or not comparable (with the reason). Compared: top-1 and normalised confidence of every
technique and configuration (each run's mean over its seeds); per board and mapping the
latency ratio g1/gG and the median latencies (on the same CPU identity only); resident bytes and recoverable
compression per technique (exact); every claim's verdict. Pure pandas: no torch.
"""

from __future__ import annotations

import math

import pandas as pd

from dyndnn.results import analysis, latency
from dyndnn.results.claims import NOT_MEASURABLE, evaluate_claims, shown_verdict
from dyndnn.results.runs import Run, Tolerances

__all__ = ["compare", "host_difference", "REPRODUCED", "DIFFERS", "INCONCLUSIVE", "NOT_COMPARABLE"]

REPRODUCED, DIFFERS, INCONCLUSIVE, NOT_COMPARABLE = "reproduced", "differs", "inconclusive", "not comparable"
COLUMNS = ["kind", "key", "reference", "run", "difference", "tolerance", "status", "reason"]


def _row(kind, key, ref, run, diff, tol, status, reason=""):
    return dict(zip(COLUMNS, (kind, key, ref, run, diff, tol, status, reason)))


def _seed_stats(run: Run, model: str, groups: int) -> dict:
    """A configuration's top-1 and confidence as the run states them: the mean over its training
    seeds where it has several (with the technique's pooled seed std), else the primary seed's
    value (std NaN)."""
    s = run.tables["seed_summary"]
    mine = s[s.model == model] if not s.empty and "n_seeds" in s else s.iloc[0:0]
    hit = mine[mine.groups == groups] if len(mine) else mine
    if len(hit) and int(hit["n_seeds"].iloc[0]) > 1:
        h = hit.iloc[0]
        return {
            "n": int(h["n_seeds"]),
            "top1": float(h["top1_mean"]),
            "top1_std": analysis.pooled_std(mine, "top1_std"),
            "confidence_norm": float(h["confidence_mean"]),
            "confidence_norm_std": analysis.pooled_std(mine, "confidence_std"),
        }
    row = run.tables["accuracy"].set_index(["model", "groups"]).loc[(model, groups)]
    nan = float("nan")
    return {
        "n": 1,
        "top1": float(row["top1"]),
        "top1_std": nan,
        "confidence_norm": float(row["confidence_norm"]),
        "confidence_norm_std": nan,
    }


def _one_sided(metric: str, label: str, a: pd.DataFrame, b: pd.DataFrame, key, tol: str | None, what: str) -> dict:
    """The row of a key only one side has: its value where it exists, not comparable."""
    where = "run" if key not in b.index else "reference"
    return _row(metric, label, a[metric].get(key), b[metric].get(key), None, tol, NOT_COMPARABLE, f"{what} in the {where}")


def _shown(stats: dict, metric: str):
    return stats[metric] if stats["n"] == 1 else f"{stats[metric]:.4g} (mean of {stats['n']} seeds)"


def _accuracy_rows(ref: Run, run: Run, tol: Tolerances) -> list[dict]:
    """Top-1 and normalised confidence per technique and configuration: each run's mean over its
    seeds, within max(fixed tolerance, seed_sigmas x the larger pooled seed std of either run). Runs
    trained in different precisions are compared the same way, and the row says so: measured,
    the precision moved the quick config's mean top-1 by less than its seed spread (docs/compare.md)."""
    rows = []
    a, b = (r.tables["accuracy"].set_index(["model", "groups"]) for r in (ref, run))
    for key in sorted(set(a.index) | set(b.index)):
        label = f"{key[0]} g{key[1]}"
        if key not in b.index or key not in a.index:
            rows += [_one_sided(m, label, a, b, key, None, f"{key[0]} was not evaluated") for m in ("top1", "confidence_norm")]
            continue
        sa, sb = _seed_stats(ref, *key), _seed_stats(run, *key)
        pa, pb = ref.precision(key[0]), run.precision(key[0])
        note = f"trained in {pa} vs {pb}" if pa and pb and pa != pb else ""
        for metric, scale, fixed, unit, digits in (
            ("top1", 100, tol.top1_pts, " pts", 3),
            ("confidence_norm", 1, tol.confidence_abs, "", 4),
        ):
            stds = [v for v in (sa[f"{metric}_std"], sb[f"{metric}_std"]) if math.isfinite(v)]
            limit = max([fixed] + [tol.seed_sigmas * scale * v for v in stds])
            diff = scale * (sb[metric] - sa[metric])
            basis = f"{tol.seed_sigmas:g} x pooled seed std" if limit > fixed else "fixed"
            rows.append(
                _row(
                    metric,
                    label,
                    _shown(sa, metric),
                    _shown(sb, metric),
                    round(diff, digits),
                    f"{limit:.3g}{unit} ({basis})",
                    REPRODUCED if abs(diff) <= limit else DIFFERS,
                    note,
                )
            )
    return rows


def _within(ratio: float, rel: float) -> bool:
    """A timing ratio run / reference within a relative tolerance, the same both ways: 0.25 means
    from 1/1.25 to 1.25 times the reference."""
    return math.isfinite(ratio) and ratio > 0 and max(ratio, 1 / ratio) - 1 <= rel + 1e-12


def _by_interval(ratio: float, lo: float, hi: float, rel: float) -> tuple[str, str]:
    """(status, how) of a timing ratio run / reference with its 95 % interval against a relative
    tolerance: reproduced when the whole interval lies within [1/(1+rel), 1+rel], differs when it
    lies wholly outside, inconclusive when it straddles a bound. Without an interval (a record
    made before the rounds) the ratio itself decides."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (REPRODUCED if _within(ratio, rel) else DIFFERS), "no interval (a record without rounds): the ratio alone"
    low, high = 1 / (1 + rel), 1 + rel
    how = f"95 % interval {lo:.3f}-{hi:.3f}"
    if low - 1e-12 <= lo and hi <= high + 1e-12:
        return REPRODUCED, how
    if hi < low or lo > high:
        return DIFFERS, how
    return INCONCLUSIVE, how + " straddles the tolerance (measure longer: profile.rounds, min_seconds)"


def host_difference(a: dict, b: dict) -> str:
    """Why two boards' timings cannot be compared ('' when their CPU identities are equal): the
    first of CPU model, ISA flags, logical CPUs and runtime that differs, or an identity that is
    unknown (a record made before identities were recorded)."""
    ida, idb = a.get("cpu_identity"), b.get("cpu_identity")
    for side, ident in (("reference", ida), ("run", idb)):
        if not isinstance(ident, str) or not ident:
            return f"CPU identity unknown in the {side} (recorded since record version 2; cpu_model {a.get('cpu_model') if side == 'reference' else b.get('cpu_model')!r} alone is no identity)"
    if ida == idb:
        return ""
    model = lambda f: f"{f.get('cpu_vendor')} family {f.get('cpu_family')} model {f.get('cpu_model_id')} stepping {f.get('cpu_stepping')}"  # noqa: E731
    if model(a) != model(b):
        return f"different CPU: {model(a)} vs {model(b)}"
    isa_a, isa_b = set(str(a.get("cpu_isa", "")).split()), set(str(b.get("cpu_isa", "")).split())
    if isa_a != isa_b:
        return f"different CPU: {' '.join(sorted(isa_a - isa_b)) or '-'} vs {' '.join(sorted(isa_b - isa_a)) or '-'}"
    if str(a.get("cpu_logical")) != str(b.get("cpu_logical")):
        return f"different CPU count: {a.get('cpu_logical')} vs {b.get('cpu_logical')} logical CPUs"
    return f"different host: {ida} vs {idb}"


def _latency_rows(ref: Run, run: Run, tol: Tolerances) -> list[dict]:
    rows = []
    a, b = (
        analysis.top_frequency(r.tables["latency_summary"]) if not r.tables["latency_summary"].empty else r.tables["latency_summary"]
        for r in (ref, run)
    )
    boards_a = set(a["board"]) if not a.empty else set()
    boards_b = set(b["board"]) if not b.empty else set()
    for board in sorted(boards_a ^ boards_b):
        where, other = ("reference", "run") if board in boards_a else ("run", "reference")
        rows.append(
            _row(
                "latency",
                f"{board}: every mapping",
                None,
                None,
                None,
                None,
                NOT_COMPARABLE,
                f"board {board} was measured only in the {where}; the {other} measured {', '.join(sorted(boards_b if where == 'reference' else boards_a)) or 'no board'}",
            )
        )
    for board in sorted(boards_a & boards_b):
        different = host_difference(ref.boards.get(board, {}), run.boards.get(board, {}))
        ga, gb = a[a.board == board], b[b.board == board]
        for (mapping, model), x in ga.groupby(["mapping", "model"]):
            y = gb[(gb.mapping == mapping) & (gb.model == model)]
            key = f"{board}: {mapping}: {model}"
            if y.empty:
                rows.append(
                    _row(
                        "latency_ratio",
                        key,
                        None,
                        None,
                        None,
                        None,
                        NOT_COMPARABLE,
                        f"{model} on mapping {mapping} was not measured in the run",
                    )
                )
                continue
            cis = {side: _intervals(d) for side, d in (("ref", x), ("run", y))}
            freq_a, freq_b = (str(d["frequency"].iloc[0]) for d in (x, y))  # top_frequency: one level per mapping
            x, y = x.set_index("groups")["p50_ms"], y.set_index("groups")["p50_ms"]
            lo, hi = x.index.min(), x.index.max()
            if lo in y.index and hi in y.index and hi != lo:
                (ra, ra_lo, ra_hi), (rb, rb_lo, rb_hi) = (
                    _ratio(r, board, mapping, model, freq, lo, hi, s) for r, s, freq in ((ref, x, freq_a), (run, y, freq_b))
                )
                status, how = _by_interval(rb / ra, *latency.interval_of_ratio(ra, ra_lo, ra_hi, rb, rb_lo, rb_hi), tol.ratio_rel)
                rows.append(
                    _row(
                        "latency_ratio",
                        f"{key}: g{lo}/g{hi}",
                        round(ra, 4),
                        round(rb, 4),
                        round(rb / ra - 1, 4) if not different else None,
                        f"{tol.ratio_rel:.0%}" if not different else None,
                        NOT_COMPARABLE if different else status,
                        f"{different}: latency ratios are compared on the same CPU identity only (how much a smaller configuration gains depends on the vector units)"
                        if different
                        else how,
                    )
                )
            for g in sorted(set(x.index) & set(y.index)):
                (xa, xa_lo, xa_hi), (yb, yb_lo, yb_hi) = cis["ref"].get(g, (x[g], NAN, NAN)), cis["run"].get(g, (y[g], NAN, NAN))
                status, how = _by_interval(y[g] / x[g], *latency.interval_of_ratio(xa, xa_lo, xa_hi, yb, yb_lo, yb_hi), tol.latency_rel)
                rows.append(
                    _row(
                        "latency_ms",
                        f"{key}: g{g}",
                        x[g],
                        y[g],
                        round(y[g] / x[g] - 1, 4) if not different else None,
                        f"{tol.latency_rel:.0%}" if not different else None,
                        NOT_COMPARABLE if different else status,
                        f"{different}: absolute times are compared on the same CPU identity only" if different else how,
                    )
                )
    return rows


NAN = float("nan")


def _intervals(points: pd.DataFrame) -> dict:
    """groups -> (median, 95 % low, 95 % high) of one technique's points on one mapping."""
    if not {"p50_lo_ms", "p50_hi_ms"} <= set(points):
        return {}
    return {int(r.groups): (r.p50_ms, float(r.p50_lo_ms), float(r.p50_hi_ms)) for r in points.itertuples()}


def _ratio(run: Run, board, mapping, model, frequency: str, small, large, medians: pd.Series) -> tuple[float, float, float]:
    """g_small / g_large of a technique on a mapping at `frequency` (the top one), with its paired
    95 % interval from the run's latency_ratios table where it has one."""
    r = run.tables.get("latency_ratios", pd.DataFrame())
    if not r.empty:
        hit = r[
            (r.board == board)
            & (r.mapping == mapping)
            & (r.model == model)
            & (r.frequency.astype(str) == frequency)
            & (r.g_small == small)
            & (r.g_large == large)
        ]
        if len(hit) == 1:
            return float(hit.ratio.iloc[0]), float(hit.ratio_lo.iloc[0]), float(hit.ratio_hi.iloc[0])
    return float(medians[small] / medians[large]), NAN, NAN


def _footprint_rows(ref: Run, run: Run) -> list[dict]:
    rows = []
    floor_a, floor_b = ref.top1_floor, run.top1_floor
    a, b = ref.tables["footprint"].set_index("model"), run.tables["footprint"].set_index("model")
    for model in sorted(set(a.index) | set(b.index)):
        for metric in ("resident_bytes", "recoverable_compression"):
            if model not in a.index or model not in b.index:
                rows.append(_one_sided(metric, model, a, b, model, "exact", f"{model} is missing"))
                continue
            if metric == "recoverable_compression" and floor_a != floor_b:
                rows.append(
                    _row(
                        metric,
                        model,
                        a.loc[model, metric],
                        b.loc[model, metric],
                        None,
                        "exact",
                        NOT_COMPARABLE,
                        f"different report.top1_floor ({floor_a} vs {floor_b})",
                    )
                )
                continue
            x, y = a.loc[model, metric], b.loc[model, metric]
            same = (pd.isna(x) and pd.isna(y)) or (not pd.isna(x) and not pd.isna(y) and math.isclose(x, y, rel_tol=1e-9))
            rows.append(
                _row(
                    metric,
                    model,
                    x,
                    y,
                    None if same else (y - x if not (pd.isna(x) or pd.isna(y)) else None),
                    "exact",
                    REPRODUCED if same else DIFFERS,
                )
            )
    return rows


def _claims(run: Run, claims: list[dict]) -> pd.DataFrame:
    tables = {**run.tables, "top1_floor": run.top1_floor}
    return evaluate_claims(claims, tables).set_index("id")


# What each claim metric rests on: the kind of compared rows whose numbers decide its verdict.
CLAIM_BASIS = {"top1_by_groups": ("top1",), "confidence_by_groups": ("confidence_norm",), "memory_vs_baselines": ("resident_bytes",)}
LATENCY_BASIS = ("latency_ms", "latency_ratio")  # every other metric: measured times (and energy)


def _basis_note(metric: str, compared: list[dict]) -> str:
    """Why a changed verdict is not a difference ('' when it is): its numbers were not comparable
    (measured on another CPU), or every one of them reproduced within its measured tolerance, so
    the verdict turned on run-to-run spread."""
    kinds = CLAIM_BASIS.get(metric, LATENCY_BASIS)
    rows = [r for r in compared if r["kind"] in kinds]
    if not rows:
        return ""
    if all(r["status"] == NOT_COMPARABLE for r in rows):
        return f"rests on {'/'.join(kinds)} numbers that are not comparable here ({rows[0]['reason']})"
    if all(r["status"] == REPRODUCED for r in rows if r["status"] != NOT_COMPARABLE):
        return f"the verdict turned within the tolerance: every {'/'.join(kinds)} number it rests on reproduced"
    return ""


def _claim_rows(ref: Run, run: Run, claims: list[dict], compared: list[dict] | None = None) -> list[dict]:
    a, b = _claims(ref, claims), _claims(run, claims)
    metrics = {c["id"]: c["metric"] for c in claims}
    rows = []
    for cid in a.index:
        va, vb = a.loc[cid, "verdict"], b.loc[cid, "verdict"]
        ours = (a.loc[cid, "ours"], b.loc[cid, "ours"])
        if NOT_MEASURABLE in (va, vb) and va != vb:
            rows.append(
                _row(
                    "claim",
                    cid,
                    va,
                    vb,
                    None,
                    "same verdict",
                    NOT_COMPARABLE,
                    f"measurable in one run only: {b.loc[cid, 'reason'] if vb == NOT_MEASURABLE else a.loc[cid, 'reason']}",
                )
            )
            continue
        noisy = "; ".join(n for n in (a.loc[cid, "noise"], b.loc[cid, "noise"]) if n)
        note = (
            (
                _basis_note(metrics.get(cid, ""), compared or [])
                or (f"the verdict rests on differences within the noise ({noisy})" if noisy else "")
            )
            if va != vb
            else ""
        )
        rows.append(
            _row(
                "claim",
                cid,
                f"{shown_verdict(va, a.loc[cid, 'noise'])} ({_fmt(ours[0])})",
                f"{shown_verdict(vb, b.loc[cid, 'noise'])} ({_fmt(ours[1])})",
                None,
                "same verdict",
                REPRODUCED if va == vb else NOT_COMPARABLE if note else DIFFERS,
                note,
            )
        )
    return rows


def _fmt(v) -> str:
    if isinstance(v, list):
        return " / ".join(f"{x:.4g}" for x in v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def compare(reference: Run, run: Run, claims: list[dict], tol: Tolerances | None = None) -> pd.DataFrame:
    """One row per compared number (COLUMNS)."""
    tol = tol or Tolerances.from_config(reference.config)
    rows = _accuracy_rows(reference, run, tol) + _latency_rows(reference, run, tol) + _footprint_rows(reference, run)
    rows += _claim_rows(reference, run, claims, rows)
    return pd.DataFrame(rows, columns=COLUMNS)
