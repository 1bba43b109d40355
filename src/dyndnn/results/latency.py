"""Latency statistics from interleaved rounds: each median with a 95 % confidence interval,
ratios of medians with paired intervals, and the instrument's negative control.

The runner measures every point in R rounds (each round visits every point once, in a random
order), so samples within a round share that round's host state and are correlated; rounds are
the independent units. A point's median is the median of its R round medians, and its interval
is a percentile bootstrap over rounds (rounds resampled with replacement, the same draws for
every point, seeded: the numbers are reproducible). A ratio of two points of one run (g1/gG)
resamples the same rounds for both, so a slow round moves numerator and denominator together.
Samples without rounds (records made before the rounds) get the pooled median and no interval.
Pure functions of DataFrames (no file I/O, no torch).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["KEYS", "LEVEL", "summary", "with_intervals", "ratio_table", "control_table", "interval_of_ratio"]

KEYS = ["board", "model", "groups", "mapping", "frequency"]
LEVEL = 0.95
DRAWS = 2000  # bootstrap resamples of the rounds
SEED = 0


def _round_medians(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per point, one column per round: the median of the round's samples."""
    return samples.groupby([*KEYS, "round"], sort=True)["latency_ms"].median().unstack("round")


def _draws(rounds: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, rounds, size=(DRAWS, rounds))


def _bootstrap(matrix: np.ndarray) -> np.ndarray:
    """(points, DRAWS): the median of round medians of every resample of the rounds."""
    return np.nanmedian(matrix[:, _draws(matrix.shape[1])], axis=2)


def _bounds(boots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tail = 100 * (1 - LEVEL) / 2
    return np.nanpercentile(boots, tail, axis=-1), np.nanpercentile(boots, 100 - tail, axis=-1)


def _has_rounds(samples: pd.DataFrame) -> bool:
    return "round" in samples and samples["round"].notna().all() and samples["round"].nunique() >= 2


def summary(samples: pd.DataFrame) -> pd.DataFrame:
    """Per point: rounds, n, p50 (median of round medians) with its 95 % interval (p50_lo_ms,
    p50_hi_ms), p90, p99, mean and std of the pooled samples (ms)."""
    cols = [*KEYS, "rounds", "n", "p50_ms", "p50_lo_ms", "p50_hi_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms"]
    if samples.empty:
        return pd.DataFrame(columns=cols)
    g = samples.groupby(KEYS, sort=True)["latency_ms"]
    out = pd.DataFrame(
        {"n": g.size(), "p50_ms": g.median(), "p90_ms": g.quantile(0.9), "p99_ms": g.quantile(0.99), "mean_ms": g.mean(), "std_ms": g.std()}
    )
    out["rounds"], out["p50_lo_ms"], out["p50_hi_ms"] = 1, np.nan, np.nan
    if _has_rounds(samples):
        wide = _round_medians(samples).reindex(out.index)
        m = wide.to_numpy(dtype=float)
        lo, hi = _bounds(_bootstrap(m))
        out["rounds"] = wide.notna().sum(axis=1)
        out["p50_ms"], out["p50_lo_ms"], out["p50_hi_ms"] = np.nanmedian(m, axis=1), lo, hi
    return out.reset_index().reindex(columns=cols)


def ratio_table(samples: pd.DataFrame) -> pd.DataFrame:
    """Per (board, model, mapping, frequency): the ratio of the smallest to the largest
    configuration's median latency (g1/gG), with a 95 % interval paired by round."""
    cols = ["board", "model", "mapping", "frequency", "g_small", "g_large", "ratio", "ratio_lo", "ratio_hi"]
    if samples.empty:
        return pd.DataFrame(columns=cols)
    paired = _has_rounds(samples)
    wide = _round_medians(samples) if paired else samples.groupby(KEYS, sort=True)["latency_ms"].median().to_frame()
    draws = _draws(wide.shape[1]) if paired else None
    rows = []
    for key, g in wide.groupby(level=["board", "model", "mapping", "frequency"], sort=True):
        g = g.droplevel(["board", "model", "mapping", "frequency"])
        small, large = g.index.min(), g.index.max()
        if small == large:
            continue
        a, b = g.loc[small].to_numpy(dtype=float), g.loc[large].to_numpy(dtype=float)
        ratio, lo, hi = float(np.nanmedian(a) / np.nanmedian(b)), np.nan, np.nan
        if paired:
            lo, hi = _bounds(np.nanmedian(a[draws], axis=1) / np.nanmedian(b[draws], axis=1))
        rows.append(dict(zip(cols, [*key, small, large, ratio, float(lo), float(hi)])))
    return pd.DataFrame(rows, columns=cols)


def control_table(summary: pd.DataFrame, exports: pd.DataFrame) -> pd.DataFrame:
    """The instrument's negative control: at every (board, mapping, frequency, groups), the
    techniques whose exported graphs are the same computation (equal layout and executed MACs:
    the static widths, the slimmable and pruned networks' widths and the truncated model run the
    same dense layers) must time the same. Their median latencies side by side, and the spread
    max / min - 1: what the instrument disagrees with itself by."""
    cols = ["board", "mapping", "frequency", "groups", "techniques", "min_ms", "max_ms", "spread"]
    if summary.empty or exports.empty or not {"macs_executed", "layout"} <= set(exports):
        return pd.DataFrame(columns=cols)
    graphs = exports[["model", "groups", "layout", "macs_executed"]]
    s = summary.merge(graphs, on=["model", "groups"], how="inner").assign(frequency=lambda d: d.frequency.astype(str))
    rows = []
    for (board, mapping, frequency, groups, _, _), g in s.groupby(["board", "mapping", "frequency", "groups", "layout", "macs_executed"]):
        if len(g) < 2:
            continue
        p = g.set_index("model")["p50_ms"].sort_index()
        rows.append(
            dict(
                zip(
                    cols,
                    [board, mapping, frequency, groups, " / ".join(p.index), float(p.min()), float(p.max()), float(p.max() / p.min() - 1)],
                )
            )
        )
    return pd.DataFrame(rows, columns=cols)


def interval_of_ratio(x: float, x_lo: float, x_hi: float, y: float, y_lo: float, y_hi: float) -> tuple[float, float]:
    """A 95 % interval of y / x for two independent medians with their own 95 % intervals:
    on the log scale, half-widths add in quadrature. (nan, nan) when either has no interval."""
    parts = [(np.log(hi) - np.log(lo)) / 2 for lo, hi in ((x_lo, x_hi), (y_lo, y_hi))]
    if not all(np.isfinite(parts)) or not (x > 0 and y > 0):
        return float("nan"), float("nan")
    h = float(np.hypot(*parts))
    r = y / x
    return float(r * np.exp(-h)), float(r * np.exp(h))


def with_intervals(runner_summary: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """The boards' summaries (device, power, energy, ...) with each point's rounds, median and
    95 % interval from `summary` of its samples in place of the runner's pooled median."""
    if runner_summary.empty or samples.empty:
        return runner_summary
    stats = summary(samples)[[*KEYS, "rounds", "p50_ms", "p50_lo_ms", "p50_hi_ms"]]
    left = runner_summary.drop(columns=[c for c in ("rounds", "p50_ms", "p50_lo_ms", "p50_hi_ms") if c in runner_summary])
    left = left.assign(frequency=left["frequency"].astype(str))
    merged = left.merge(stats.assign(frequency=stats["frequency"].astype(str)), on=KEYS, how="left")
    first = [c for c in runner_summary.columns if c in merged]
    return merged[[*first, *[c for c in merged.columns if c not in first]]]
