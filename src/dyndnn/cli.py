"""Command line: `dyndnn manager` answers a budget query from a results table; `dyndnn
compare` checks a run against a reference record; `dyndnn replay` re-renders a record;
`dyndnn summary` prints one."""

from __future__ import annotations

import argparse
import math
import sys
from importlib.metadata import PackageNotFoundError, version

import pandas as pd

from dyndnn.arch import DYNAMIC
from dyndnn.results.contract import check_table
from dyndnn.results.manager import BUDGET_COLUMNS, choose
from dyndnn.results.record import RecordError

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
        raise UsageError(
            f"--points {args.points}: no column {', '.join(missing)}; give the operating-points table (results/tables/operating_points.csv)"
        )
    try:
        check_table("operating_points", points, args.points)
    except RecordError as e:
        raise UsageError(str(e)) from None
    points = _select(_select(points, "model", args.model, "--model"), "board", args.board, "--board")
    c = choose(points, budget, kind)
    p = c.point
    print(f"{'meets' if c.meets_budget else 'VIOLATES'} budget {kind} <= {budget:g}: {c.reason}")
    print(
        f"  board {p.get('board')}, model {p.get('model')}, groups {p.get('groups')}, mapping {p.get('mapping')}, frequency {p.get('frequency')}"
    )
    print(
        f"  top1 {p.get('top1'):.4f}, p50 {p.get('p50_ms'):.4g} ms, energy {_measured(p.get('energy_mj'), 'mJ')}, power {_measured(p.get('power_w'), 'W')}"
    )
    return 0 if c.meets_budget else 3


def _compare(args) -> int:
    from pathlib import Path

    import yaml

    from dyndnn.results.compare import DIFFERS, INCONCLUSIVE, NOT_COMPARABLE, REPRODUCED, compare  # only for this subcommand
    from dyndnn.results.runs import Tolerances, load_run  # only for this subcommand

    reference, run = load_run(args.reference), load_run(args.run)
    tol = Tolerances.from_config(reference.config)
    overrides = {k: getattr(args, k) for k in Tolerances.__dataclass_fields__ if getattr(args, k, None) is not None}
    tol = Tolerances(**{**tol.__dict__, **overrides})
    claims_file = reference.claims_file() or Path(args.claims)
    try:
        claims = yaml.safe_load(claims_file.read_text())["claims"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
        raise UsageError(f"{claims_file}: cannot read the claims ({e})") from None
    from dyndnn.results.compare_view import config_differences, render  # only for this subcommand

    rows = compare(reference, run, claims, tol)
    shown = rows if args.all else rows[rows.status != REPRODUCED]
    print(f"dyndnn compare: reference {args.reference} ({reference.provenance}), run {args.run} ({run.provenance}); tolerances {tol}")
    differences = config_differences(reference, run)
    if differences:
        print(
            f"The two configs differ in {len(differences)} value(s) that decide numbers, so rows may differ by design, "
            "not by a failure to reproduce:\n  " + "\n  ".join(differences)
        )
    else:
        print("The two configs agree in every value that decides numbers (data, design, recipe, seeds, precision, export, measurement).")
    print(render(shown) if not shown.empty else "(every compared number reproduced; --all lists them)")
    counts = rows.status.value_counts()
    print(
        f"{counts.get(REPRODUCED, 0)} reproduced, {counts.get(DIFFERS, 0)} differ, {counts.get(INCONCLUSIVE, 0)} inconclusive, "
        f"{counts.get(NOT_COMPARABLE, 0)} not comparable"
    )
    if args.csv:
        rows.to_csv(args.csv, index=False)
    return 1 if counts.get(DIFFERS, 0) else 0


def _replay(args) -> int:
    from pathlib import Path

    from dyndnn.results.replay import replay  # plotting imports: only for this subcommand

    html = replay(args.record, args.out, Path(__file__).resolve().parents[2])
    print(f"replayed {args.record} (every file's sha256 verified) into {args.out}: {html}")
    return 0


def _summary(args) -> int:
    from dyndnn.results.summary import summarize, update_readme  # only for this subcommand

    if args.readme is None:
        print(summarize(args.record))
        return 0
    stale = update_readme(args.readme, args.record, check=args.check)
    if args.check:
        print(f"{args.readme}: blocks of {args.record} " + (f"stale: {', '.join(stale)}" if stale else "up to date"))
        return 1 if stale else 0
    print(
        f"{args.readme}: "
        + (f"rewrote the blocks {', '.join(stale)} from {args.record}" if stale else f"blocks of {args.record} already up to date")
    )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dyndnn", description="dyndnn command line")
    ap.add_argument("--version", action="version", version=f"dyndnn {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("manager", help="pick the most accurate operating point within a budget")
    m.add_argument("--points", default="results/tables/operating_points.csv", help="operating-points table written by the aggregate rule")
    m.add_argument("--model", default=DYNAMIC)
    m.add_argument("--board")
    budget = m.add_mutually_exclusive_group(required=True)
    budget.add_argument("--time-ms", dest="time_ms", type=float)
    budget.add_argument("--energy-mj", dest="energy_mj", type=float)
    budget.add_argument("--power-w", dest="power_w", type=float)
    c = sub.add_parser(
        "compare", help="compare a run against a reference record, number by number (exit 0 reproduced, 1 differs, 2 bad input)"
    )
    c.add_argument("reference", help="a record folder (e.g. reference/quick)")
    c.add_argument("run", help="another record, or a results folder (e.g. results)")
    c.add_argument("--all", action="store_true", help="list reproduced rows too")
    c.add_argument("--csv", help="write every row to this CSV file")
    c.add_argument("--claims", default="config/claims.yaml", help="claims file when the reference record has none")
    for name, help_ in [
        ("top1_pts", "top-1 tolerance in points"),
        ("seed_sigmas", "or this many seed standard deviations"),
        ("confidence_abs", "normalised confidence"),
        ("latency_rel", "median latency, same host model (relative)"),
        ("ratio_rel", "latency ratio g1/gG (relative)"),
    ]:
        c.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=_tolerance, help=f"{help_} (default: the reference config's compare block)"
        )
    r = sub.add_parser("replay", help="re-render every figure and the report of a record into another folder")
    r.add_argument("record")
    r.add_argument("out")
    s = sub.add_parser(
        "summary", help="a record as Markdown tables: provenance and sittings, top-1 by configuration, claims, time per rule"
    )
    s.add_argument("record")
    s.add_argument("--readme", help="rewrite this file's blocks that name the record (<!-- record PATH: NAME --> ... <!-- end record -->)")
    s.add_argument("--check", action="store_true", help="with --readme: write nothing; exit 1 when a block is stale")
    args = ap.parse_args(argv)
    commands = {"manager": _manager, "compare": _compare, "replay": _replay, "summary": _summary}
    try:
        return commands[args.command](args)
    except (OSError, ValueError) as e:
        print(f"dyndnn {args.command}: {e}", file=sys.stderr)
        return 2


def _tolerance(text: str) -> float:
    """A tolerance on the command line: a finite number >= 0 (NaN would make every comparison false)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a tolerance must be a finite number >= 0")
    return value


def _measured(value, unit: str) -> str:
    return f"{value:.4g} {unit}" if isinstance(value, (int, float)) and math.isfinite(value) else "not measured"


def _version() -> str:
    try:
        return version("dyndnn")
    except PackageNotFoundError:
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
