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

__all__ = ["dynamic_range", "latency_summary", "config_table", "scaling_table"]


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


def config_table(accuracy: pd.DataFrame, latency: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, groups, board, mapping): accuracy and cost side by side."""
    cols = ["model", "groups", "width_pct", "top1", "confidence_norm", "macs", "params", "weight_bytes"]
    lat = latency[["board", "model", "groups", "mapping", "frequency", "p50_ms", "p90_ms", "n"]] if not latency.empty else latency
    if lat.empty:
        return accuracy[cols].copy()
    return accuracy[cols].merge(lat, on=["model", "groups"], how="left")


def scaling_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, board, mapping): how much faster the smallest configuration is than the
    largest, next to its MAC ratio; the dynamic range of latency over configurations."""
    rows = []
    for (model, board, mapping), d in table.dropna(subset=["p50_ms"]).groupby(["model", "board", "mapping"]):
        d = d.sort_values("groups")
        small, full = d.iloc[0], d.iloc[-1]
        rows.append(
            {
                "model": model,
                "board": board,
                "mapping": mapping,
                "latency_small_over_full": small.p50_ms / full.p50_ms,
                "macs_small_over_full": small.macs / full.macs,
                "latency_dynamic_range": dynamic_range(d.p50_ms),
                "top1_small": small.top1,
                "top1_full": full.top1,
            }
        )
    return pd.DataFrame(rows)
