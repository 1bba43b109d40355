"""Command line: `dyndnn manager` answers a budget query from a results table."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from dyndnn.manager import BUDGET_COLUMNS, choose

__all__ = ["main"]


def _manager(args) -> int:
    points = pd.read_csv(args.points)
    if args.model:
        points = points[points["model"] == args.model]
    if args.board:
        points = points[points["board"] == args.board]
    kind, budget = next((k, getattr(args, k)) for k in BUDGET_COLUMNS if getattr(args, k) is not None)
    c = choose(points, budget, kind)
    p = c.point
    print(f"{'meets' if c.meets_budget else 'VIOLATES'} budget {kind} <= {budget:g}: {c.reason}")
    print(f"  board {p.get('board')}, model {p.get('model')}, groups {p.get('groups')}, mapping {p.get('mapping')}, frequency {p.get('frequency')}")
    print(f"  top1 {p.get('top1'):.4f}, p50 {p.get('p50_ms'):.4g} ms, energy {p.get('energy_mj')} mJ, power {p.get('power_w')} W")
    return 0 if c.meets_budget else 3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dyndnn", description="dyndnn command line")
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


if __name__ == "__main__":
    sys.exit(main())
