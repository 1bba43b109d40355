"""Budget-trace simulation of runtime managers over measured operating points.

Scope: a trace of steps, each with a time budget and a contention slowdown (the
factor by which every latency grows while another workload runs). At each step a
policy picks an operating point; its latency is a raw sample measured for that
point, times the slowdown. Policies:

* ``manager``: ours; the lookup table (`manager.choose`) with the budget divided by
  an online slowdown estimate (mean of the last `window` observed / table latencies);
* ``fixed``: the most accurate point that fits the initial budget, never changed;
* ``stepping``: Dynamic-OFA's runtime manager: levels ordered by accuracy, one step
  down when the moving average of the last `window` latencies exceeds the budget,
  one up when it is below `up_margin` x budget;
* ``oracle``: knows every candidate's realised latency at this step (its sample
  draw times the slowdown) and picks the most accurate point that fits: an upper
  bound no online policy can beat.

Reports budget violations and mean accuracy per policy. Pure numpy/pandas.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from dyndnn.arch import DYNAMIC
from dyndnn.config import from_block
from dyndnn.defaults import default
from dyndnn.provenance import write_table
from dyndnn.results.manager import choose

__all__ = ["TraceSpec", "make_trace", "simulate", "summarise_runs", "POLICIES", "simulate_tables"]

POLICIES = ("manager", "fixed", "stepping", "oracle")


@dataclass(frozen=True)
class TraceSpec:
    """The config's `simulate` block but its board (the schema documents and bounds each)."""

    steps: int = default("simulate", "steps")
    budget_ms: float = default("simulate", "budget_ms")  # 0: the median latency of the full configuration on the fastest mapping
    contention: tuple[tuple[int, int, float], ...] = default("simulate", "contention")  # (start, stop, slowdown)
    budget_changes: tuple[tuple[int, float], ...] = default("simulate", "budget_changes")  # (step, budget x factor from then on)
    window: int = default("simulate", "window")
    up_margin: float = default("simulate", "up_margin")
    seed: int = default("simulate", "seed")

    def __post_init__(self):
        for name in ("contention", "budget_changes"):
            object.__setattr__(self, name, tuple(tuple(c) for c in getattr(self, name)))


def make_trace(spec: TraceSpec, base_budget_ms: float) -> pd.DataFrame:
    """Per step: budget_ms and slowdown."""
    t = np.arange(spec.steps)
    slowdown = np.ones(spec.steps)
    for start, stop, factor in spec.contention:
        slowdown[(t >= start) & (t < stop)] = factor
    budget = np.full(spec.steps, base_budget_ms)
    for step, factor in spec.budget_changes:
        budget[t >= step] = base_budget_ms * factor
    return pd.DataFrame({"step": t, "budget_ms": budget, "slowdown": slowdown})


def _points_with_samples(points: pd.DataFrame, samples: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    keys = ["mapping", "frequency", "groups"]
    pts = points.dropna(subset=["p50_ms", "top1"]).reset_index(drop=True)
    s = samples.assign(frequency=samples["frequency"].astype(str))
    pools = {tuple(k): g["latency_ms"].to_numpy() for k, g in s.groupby(keys)}
    missing = [tuple(r) for r in pts[keys].itertuples(index=False) if tuple(r) not in pools]
    if missing:
        raise ValueError(f"no raw samples for operating points {missing[:3]}")
    return pts, pools


def simulate(points: pd.DataFrame, samples: pd.DataFrame, spec: TraceSpec) -> pd.DataFrame:
    """One row per (policy, step): the point chosen, its latency, budget, violation, top1.

    `points`: one board's operating points of one model (p50_ms, top1, mapping,
    frequency, groups); `samples`: that board's raw latency samples.
    """
    pts, pools = _points_with_samples(points, samples)
    if pts.empty:
        raise ValueError("no operating points to simulate")
    full = pts[pts.groups == pts.groups.max()]
    trace = make_trace(spec, spec.budget_ms or float(full.p50_ms.min()))
    rng = np.random.default_rng(spec.seed)
    draws = rng.random(spec.steps)  # the same sample quantiles for every policy
    levels = pts.sort_values(["top1", "p50_ms"], ascending=[True, True]).index.to_list()  # stepping: worst .. best
    rows = []
    for policy in POLICIES:
        history: deque = deque(maxlen=spec.window)
        ratio: deque = deque(maxlen=spec.window)
        fixed = _choose_idx(pts, trace.budget_ms.iloc[0])  # what fits the initial budget
        level = levels.index(fixed)
        for step, budget, slow in trace.itertuples(index=False):
            if policy == "fixed":
                idx = fixed
            elif policy == "oracle":  # knows the realised latency of every candidate
                realised = pts.assign(
                    p50_ms=[
                        float(np.quantile(pools[(m, str(f), g)], draws[step])) * slow
                        for m, f, g in zip(pts.mapping, pts.frequency, pts.groups)
                    ]
                )
                idx = _choose_idx(realised, budget)
            elif policy == "manager":
                estimate = float(np.mean(ratio)) if ratio else 1.0
                idx = _choose_idx(pts, budget / estimate)
            else:  # stepping
                if len(history) == spec.window:
                    avg = float(np.mean(history))
                    if avg > budget and level > 0:
                        level -= 1
                        history.clear()
                    elif avg < spec.up_margin * budget and level < len(levels) - 1:
                        level += 1
                        history.clear()
                idx = levels[level]
            p = pts.loc[idx]
            pool = pools[(p.mapping, str(p.frequency), p.groups)]
            latency = float(np.quantile(pool, draws[step])) * slow
            history.append(latency)
            ratio.append(latency / p.p50_ms)
            rows.append(
                {
                    "policy": policy,
                    "step": step,
                    "budget_ms": budget,
                    "slowdown": slow,
                    "groups": int(p.groups),
                    "mapping": p.mapping,
                    "frequency": p.frequency,
                    "latency_ms": latency,
                    "violation": latency > budget,
                    "top1": float(p.top1),
                }
            )
    return pd.DataFrame(rows)


def _choose_idx(pts: pd.DataFrame, budget: float) -> int:
    """Index (into pts) of the manager's choice for this budget."""
    c = choose(pts.assign(_idx=pts.index), budget, "time_ms")
    return int(c.point["_idx"])


def summarise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Per policy: violations (count, rate), mean top-1, mean latency, switches."""
    out = []
    for policy, g in runs.groupby("policy", sort=False):
        g = g.sort_values("step")
        switches = int(((g.groups.diff() != 0) | (g.mapping != g.mapping.shift())).iloc[1:].sum())
        out.append(
            {
                "policy": policy,
                "steps": len(g),
                "violations": int(g.violation.sum()),
                "violation_rate": float(g.violation.mean()),
                "mean_top1": float(g.top1.mean()),
                "mean_latency_ms": float(g.latency_ms.mean()),
                "switches": switches,
            }
        )
    return pd.DataFrame(out)


def simulate_tables(points_csv: str, samples_csv: str, settings: dict, out_runs: str, out_summary: str) -> pd.DataFrame:
    """The simulate_budget rule: the dynamic DNN on one board (settings['board'] or the first)."""
    settings = dict(settings)
    board = settings.pop("board", None)
    points = pd.read_csv(points_csv)
    samples = pd.read_csv(samples_csv)
    points = points[points.model == DYNAMIC]
    board = board or (points.board.iloc[0] if not points.empty else None)
    spec = from_block(TraceSpec, settings)
    if board is None:
        runs = pd.DataFrame(
            columns=["policy", "step", "budget_ms", "slowdown", "groups", "mapping", "frequency", "latency_ms", "violation", "top1"]
        )
    else:
        runs = simulate(points[points.board == board], samples[(samples.board == board) & (samples.model == DYNAMIC)], spec)
    runs.insert(0, "board", board)
    summary = (
        summarise_runs(runs)
        if not runs.empty
        else pd.DataFrame(columns=["policy", "steps", "violations", "violation_rate", "mean_top1", "mean_latency_ms", "switches"])
    )
    meta = {
        "table": "budget simulation",
        "board": board,
        "spec": asdict(spec),
    }
    write_table(runs, out_runs, meta)
    write_table(summary, out_summary, meta)
    return summary
