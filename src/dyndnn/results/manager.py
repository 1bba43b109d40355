"""Runtime manager: choose an operating point that meets a budget.

Scope: from a table of measured operating points (configuration x mapping x
frequency -> latency, power, energy, accuracy), pick the point of highest
accuracy whose cost stays within a time, energy or power budget; when none
does, the cheapest point, flagged as a violation. Pure pandas: no torch, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Choice", "BUDGET_COLUMNS", "choose"]

BUDGET_COLUMNS = {"time_ms": "p50_ms", "energy_mj": "energy_mj", "power_w": "power_w"}


@dataclass(frozen=True)
class Choice:
    point: dict
    meets_budget: bool
    reason: str


def choose(points: pd.DataFrame, budget: float, kind: str = "time_ms", accuracy: str = "top1") -> Choice:
    """Highest `accuracy` with cost <= budget; ties go to the cheaper point, then to
    fewer groups. With nothing feasible: the cheapest point, meets_budget False."""
    if kind not in BUDGET_COLUMNS:
        raise ValueError(f"budget kind must be one of {sorted(BUDGET_COLUMNS)}, got {kind!r}")
    cost = BUDGET_COLUMNS[kind]
    for column in (cost, accuracy):
        if not points.empty and column not in points:
            raise ValueError(f"the operating points have no column {column!r} (columns: {', '.join(map(str, points.columns))})")
        if not points.empty and not pd.api.types.is_numeric_dtype(points[column]):
            raise ValueError(f"operating-points column {column!r} is not numeric (a table written by the aggregate rule has numbers there)")
    d = points.dropna(subset=[cost, accuracy]) if not points.empty else points
    if d.empty:
        raise ValueError(f"no operating point has both {cost} and {accuracy}")
    feasible = d[d[cost] <= budget]
    if feasible.empty:
        best = d.sort_values([cost, accuracy], ascending=[True, False]).iloc[0]
        return Choice(best.to_dict(), False, f"no point meets {kind} <= {budget:g}; cheapest is {best[cost]:.4g}")
    best = feasible.sort_values([accuracy, cost, "groups"], ascending=[False, True, True]).iloc[0]
    return Choice(best.to_dict(), True, f"highest {accuracy} with {kind} <= {budget:g}")
