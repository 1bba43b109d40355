"""Command line: `dyndnn manager` answers a budget query from a results table."""

from __future__ import annotations

import argparse
import math
import sys
from importlib.metadata import PackageNotFoundError, version

import pandas as pd

from dyndnn.manager import BUDGET_COLUMNS, choose

__all__ = ["main"]


class UsageError(ValueError):
    """Bad input to a command: one line, exit code 2."""


def _select(points: pd.DataFrame, column: str, value: str | None, option: str) -> pd.DataFrame:
    if value is None:
        return points
    known = sorted(points[column].dropna().astype(str).unique())
    if value not in known:
        raise UsageError(f"{option} {value!r}: no operating point of that {column} in the table (known: {', '.join(known) or 'none'})")
    return points[points[column].astype(str) == value]


def _manager(args) -> int:
    kind, budget = next((k, getattr(args, k)) for k in BUDGET_COLUMNS if getattr(args, k) is not None)
    if not math.isfinite(budget) or budget < 0:
        raise UsageError(f"--{kind.replace('_', '-')} {budget:g}: a budget must be a finite number >= 0")
    try:
        points = pd.read_csv(args.points)
    except FileNotFoundError:
        raise UsageError(f"--points {args.points}: no such file (the aggregate rule writes results/tables/operating_points.csv)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"--points {args.points}: not a CSV table ({e})") from None
    needed = ["board", "model", "groups", BUDGET_COLUMNS[kind], "top1"]
    missing = [c for c in needed if c not in points.columns]
    if missing:
        raise UsageError(f"--points {args.points}: no column {', '.join(missing)}; give the operating-points table (results/tables/operating_points.csv)")
    points = _select(_select(points, "model", args.model, "--model"), "board", args.board, "--board")
    c = choose(points, budget, kind)
    p = c.point
    print(f"{'meets' if c.meets_budget else 'VIOLATES'} budget {kind} <= {budget:g}: {c.reason}")
    print(f"  board {p.get('board')}, model {p.get('model')}, groups {p.get('groups')}, mapping {p.get('mapping')}, frequency {p.get('frequency')}")
    print(f"  top1 {p.get('top1'):.4f}, p50 {p.get('p50_ms'):.4g} ms, energy {_measured(p.get('energy_mj'), 'mJ')}, power {_measured(p.get('power_w'), 'W')}")
    return 0 if c.meets_budget else 3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dyndnn", description="dyndnn command line")
    ap.add_argument("--version", action="version", version=f"dyndnn {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("manager", help="pick the most accurate operating point within a budget")
    m.add_argument("--points", default="results/tables/operating_points.csv", help="operating-points table written by the aggregate rule")
    m.add_argument("--model", default="dynamic")
    m.add_argument("--board")
    budget = m.add_mutually_exclusive_group(required=True)
    budget.add_argument("--time-ms", dest="time_ms", type=float)
    budget.add_argument("--energy-mj", dest="energy_mj", type=float)
    budget.add_argument("--power-w", dest="power_w", type=float)
    args = ap.parse_args(argv)
    try:
        return _manager(args)
    except (OSError, ValueError) as e:
        print(f"dyndnn manager: {e}", file=sys.stderr)
        return 2


def _measured(value, unit: str) -> str:
    return f"{value:.4g} {unit}" if isinstance(value, (int, float)) and math.isfinite(value) else "not measured"


def _version() -> str:
    try:
        return version("dyndnn")
    except PackageNotFoundError:
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
