"""The contract of a run's tables, checked by every reader (compare, summary, replay, the
report's reference column, the runtime manager) before a number is used: required columns,
types, finite values in range (top-1 in [0, 1], latencies, energies, bytes and MACs > 0, counts
>= 1), unique keys, and agreement between the tables that state the same number (the primary
seed's accuracy, every seed's rows, their means). A sha256 proves a record is what its producer
wrote; this proves the producer wrote something a reader may trust. One line names the file, the
line and the column (RecordError)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dyndnn.results.record import RecordError

__all__ = ["CONTRACTS", "check_table", "check_tables"]

INF = math.inf
# table -> (key columns, {column: (kind, low, high, required)}); kind: "str", "int", "num", "any"
# (present, any value). Ranges are closed; a low of POS means strictly positive.
POS = 1e-300
# A measured point (board x technique x configuration x mapping x frequency): what the latency
# summary and the operating points both state of it.
POINT_KEY = ("board", "model", "groups", "mapping", "frequency")
MEASURED_POINT = {
    "board": ("str", None, None, True),
    "model": ("str", None, None, True),
    "groups": ("int", 1, 64, True),
    "mapping": ("str", None, None, True),
    "p50_ms": ("num", POS, INF, True),
    "energy_mj": ("num", POS, INF, False),
    "power_w": ("num", POS, INF, False),
}
CONTRACTS: dict[str, tuple[tuple[str, ...], dict[str, tuple]]] = {
    "accuracy": (
        ("model", "groups"),
        {
            "model": ("str", None, None, True),
            "groups": ("int", 1, 64, True),
            "top1": ("num", 0.0, 1.0, True),
            "confidence_norm": ("num", 0.0, INF, True),
            "macs": ("num", 1, INF, True),
            "resident_bytes": ("num", 1, INF, True),
            "params": ("num", 1, INF, False),
            "n_images": ("int", 1, INF, False),
        },
    ),
    "accuracy_seeds": (
        ("seed", "model", "groups"),
        {
            "model": ("str", None, None, True),
            "seed": ("int", 0, 2**32 - 1, True),
            "groups": ("int", 1, 64, True),
            "top1": ("num", 0.0, 1.0, True),
            "confidence_norm": ("num", 0.0, INF, True),
        },
    ),
    "seed_summary": (
        ("model", "groups"),
        {
            "model": ("str", None, None, True),
            "groups": ("int", 1, 64, True),
            "n_seeds": ("int", 1, INF, True),
            "top1_mean": ("num", 0.0, 1.0, True),
            "top1_std": ("num", 0.0, 1.0, False),
            "confidence_mean": ("num", 0.0, INF, False),
        },
    ),
    "latency_summary": (
        POINT_KEY,
        {
            **MEASURED_POINT,
            "p50_lo_ms": ("num", POS, INF, False),
            "p50_hi_ms": ("num", POS, INF, False),
            "n": ("int", 1, INF, False),
        },
    ),
    "operating_points": (POINT_KEY, {**MEASURED_POINT, "top1": ("num", 0.0, 1.0, True)}),
    "footprint": (
        ("model",),
        {
            "model": ("str", None, None, True),
            "resident_bytes": ("num", 1, INF, True),
            "recoverable_compression": ("num", 1.0, INF, False),
            "configs": ("int", 1, 64, False),
        },
    ),
    "ranges": (
        ("board", "model", "metric"),
        {"board": ("str", None, None, True), "model": ("str", None, None, True), "range_configs_alone": ("num", 1.0, INF, False)},
    ),
    "boards": (
        ("board", "fact"),
        {"board": ("str", None, None, True), "fact": ("str", None, None, True), "value": ("any", None, None, True)},
    ),
    "latency_ratios": (
        ("board", "model", "mapping", "frequency", "g_small", "g_large"),
        {"ratio": ("num", POS, INF, True), "ratio_lo": ("num", POS, INF, False), "ratio_hi": ("num", POS, INF, False)},
    ),
}
NULLABLE = {"energy_mj", "power_w", "top1_std", "p50_lo_ms", "p50_hi_ms", "ratio_lo", "ratio_hi", "recoverable_compression"}


def _where(path, line: int, column: str) -> str:
    return f"{path}: line {line}, column {column}"


def check_table(name: str, df: pd.DataFrame, path: str | Path) -> None:
    """Raise RecordError naming the file, line (the CSV's, header = 1) and column of the first
    breach of `name`'s contract; an empty table passes (a run may lack what it did not measure)."""
    if name not in CONTRACTS or df.empty:
        return
    key, columns = CONTRACTS[name]
    for col, (kind, low, high, required) in columns.items():
        if col not in df.columns:
            if required:
                raise RecordError(
                    f"{path}: malformed table, no column {col} (the {name} table needs {', '.join(c for c, s in columns.items() if s[3])})"
                )
            continue
        if kind == "any":
            continue
        for i, v in enumerate(df[col]):
            line = i + 2
            if kind == "str":
                if not isinstance(v, str) or not v:
                    raise RecordError(f"{_where(path, line, col)}: {v!r} is not a name")
                continue
            if v is None or (isinstance(v, float) and math.isnan(v)):
                if col in NULLABLE or not required:
                    continue
                raise RecordError(f"{_where(path, line, col)}: empty (a number is required)")
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise RecordError(f"{_where(path, line, col)}: {v!r} is not a number") from None
            if not math.isfinite(f):
                raise RecordError(f"{_where(path, line, col)}: {v!r} is not a finite number")
            if kind == "int" and not f.is_integer():
                raise RecordError(f"{_where(path, line, col)}: {v!r} is not a whole number")
            if (low is not None and f < low) or (high is not None and f > high):
                shown = "(0" if low == POS else f"[{low:g}"
                raise RecordError(f"{_where(path, line, col)}: {v!r} is outside {shown}, {high:g}]")
    present = [k for k in key if k in df.columns]
    dup = df.duplicated(subset=present, keep="first") if present else pd.Series(False, index=df.index)
    if dup.any():  # the first row whose key an earlier row has
        i = int(dup.to_numpy().nonzero()[0][0])
        row = df.iloc[i]
        raise RecordError(
            f"{path}: line {i + 2}: key ({', '.join(f'{k}={row[k]}' for k in present)}) appears twice (each {' x '.join(present)} once)"
        )


def check_tables(tables: dict[str, pd.DataFrame], paths: dict[str, str | Path]) -> None:
    """Every table's contract, then agreement between the tables that state the same numbers: the
    seed summary's means are the means of every seed's rows (`accuracy_seeds`), and the accuracy
    table is the primary seed's rows (compare reads one and claims another, so they must not
    disagree)."""
    for name, df in tables.items():
        if isinstance(df, pd.DataFrame):
            check_table(name, df, paths.get(name, f"tables/{name}.csv"))
    seeds = tables.get("accuracy_seeds")
    if seeds is not None and not seeds.empty:
        summary = tables.get("seed_summary")
        if summary is not None and not summary.empty and {"top1_mean", "n_seeds"} <= set(summary):
            mean = seeds.groupby(["model", "groups"]).top1.agg(["mean", "size"])
            for i, row in enumerate(summary.itertuples(index=False)):
                got = mean.loc[(row.model, row.groups)] if (row.model, row.groups) in mean.index else None
                if got is None or abs(got["mean"] - row.top1_mean) > 1e-6 or int(got["size"]) != int(row.n_seeds):
                    stated = "no seed rows" if got is None else f"{got['mean']:.6g} over {int(got['size'])} seed rows"
                    raise RecordError(
                        f"{paths.get('seed_summary', 'tables/seed_summary.csv')}: line {i + 2}: top1_mean {row.top1_mean:.6g} "
                        f"(n_seeds {row.n_seeds}) disagrees with accuracy_seeds.csv ({stated})"
                    )
        acc = tables.get("accuracy")
        if acc is not None and not acc.empty and "seed" in acc and "seed" in seeds:
            primary = seeds.merge(acc[["model", "groups", "seed", "top1"]], on=["model", "groups", "seed"], suffixes=("", "_acc"))
            off = primary[(primary.top1 - primary.top1_acc).abs() > 1e-9]
            if len(off) or len(primary) != len(acc):
                raise RecordError(
                    f"{paths.get('accuracy', 'tables/accuracy.csv')}: its rows are not the primary seed's rows of accuracy_seeds.csv"
                    + (
                        f" ({off.iloc[0].model} g{off.iloc[0].groups}: {off.iloc[0].top1_acc:.6g} vs {off.iloc[0].top1:.6g})"
                        if len(off)
                        else ""
                    )
                )
