"""Does the latency instrument agree with itself? Two profiles of the same exported models on
the same machine, with the interleaved-rounds protocol (the config's profile block) and, as the
baseline measured in the same run, the former protocol (every point measured once, in plan
order: all one-core points, then all all-cores points, technique after technique), or (`kept`)
the interleaved rounds with one session per worker and point instead of a new one per visit, or
(`nohuge`) the config's protocol with the workers' allocations on small pages (huge_pages off).
The protocols' profiles alternate (A0 B0 A1 B1), so a drift of the host lands on both.

Prints per protocol: the wall time of one profile; the widest 95 % interval of a median
(half-width relative to the median) and the median one; the negative control (techniques that run the same graph:
their largest disagreement at any mapping and configuration); and between the two profiles the
largest disagreement of a median and of a g1/gG ratio. The last line gives the new protocol's
figures as ratios of the old one's.

    python benchmarks/bench_latency.py RESULTS [--config config/config.yaml] [--board config/boards/local.yaml]

RESULTS: a results folder with exports (results/onnx/<model>/g<k>.onnx and its tables/exports.csv),
e.g. a main-job or quick run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from dyndnn.boards.board import load_board
from dyndnn.boards.profiling import models_from_paths, profile_board
from dyndnn.config import MeasureSettings, as_params, from_block
from dyndnn.results import latency
from dyndnn.schema import read_yaml

REPO = Path(__file__).resolve().parents[1]
OLD = {"rounds": 1, "workers": 1, "shuffle": False, "fresh_sessions": False}  # the former protocol: one visit per point, plan order
KEPT = {"fresh_sessions": False}  # interleaved rounds, but one session per worker and point (before fresh_sessions)
NOHUGE = {"huge_pages": False}  # the config's protocol on small pages (before huge_pages)


def profile(board: dict, models: list[dict], settings: dict, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    t0 = time.perf_counter()
    profile_board(board, models, settings, out)
    wall = time.perf_counter() - t0
    samples = pd.read_csv(out / "samples.csv", dtype={"frequency": str})
    return latency.summary(samples), latency.ratio_table(samples), wall


def figures(a, b, exports: pd.DataFrame) -> dict:
    (sa, ra, wa), (sb, rb, wb) = a, b
    keys = ["board", "model", "groups", "mapping", "frequency"]
    m = sa.merge(sb, on=keys, suffixes=("_a", "_b"))
    r = ra.merge(rb, on=["board", "model", "mapping", "frequency"], suffixes=("_a", "_b"))
    half = pd.concat([(s.p50_hi_ms - s.p50_lo_ms) / 2 / s.p50_ms for s in (sa, sb)])
    control = pd.concat([latency.control_table(s, exports) for s in (sa, sb)])
    return {
        "wall_s": max(wa, wb),
        "ci_half_width_max": float(half.max()) if half.notna().any() else float("nan"),
        "ci_half_width_median": float(half.median()) if half.notna().any() else float("nan"),
        "control_spread_max": float(control.spread.max()) if not control.empty else float("nan"),
        "median_disagreement_max": float((m.p50_ms_a / m.p50_ms_b - 1).abs().max()),
        "ratio_disagreement_max": float((r.ratio_a / r.ratio_b - 1).abs().max()),
        "points": len(m),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    ap.add_argument("--board", type=Path, default=REPO / "config/boards/local.yaml")
    ap.add_argument(
        "--protocols",
        nargs="+",
        choices=["old", "kept", "nohuge", "new"],
        default=["old", "new"],
        help="which to run (default: old and new)",
    )
    args = ap.parse_args()
    board = load_board(args.board)
    models = models_from_paths(sorted(args.results.glob("onnx/*/g*.onnx")))
    exports = pd.read_csv(args.results / "tables/exports.csv")
    block = {k: v for k, v in read_yaml(args.config)["profile"].items() if k in MeasureSettings.__dataclass_fields__}
    new = as_params(from_block(MeasureSettings, block))
    protocols = {"old": {**new, **OLD}, "kept": {**new, **KEPT}, "nohuge": {**new, **NOHUGE}, "new": new}
    chosen = {n: s for n, s in protocols.items() if n in args.protocols}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: [] for name in chosen}
        for i in (0, 1):  # alternating: A0 B0 A1 B1
            for name, settings in chosen.items():
                runs[name].append(profile(board, models, settings, Path(tmp) / f"{name}{i}"))
        for name, settings in chosen.items():
            out[name] = figures(*runs[name], exports)
            shown = ("rounds", "workers", "shuffle", "fresh_sessions", "huge_pages", "min_runs", "min_seconds")
            print(f"{name} protocol ({json.dumps({k: settings[k] for k in shown})}):")
            for k, v in out[name].items():
                print(f"  {k:26s} {v:.4g}" if isinstance(v, float) else f"  {k:26s} {v}")
    base = next((b for b in ("old", "kept", "nohuge") if b in out), None)
    if "new" in out and base:
        ratios = {k: out["new"][k] / out[base][k] for k in out["new"] if k != "points" and out[base][k] and out[base][k] == out[base][k]}
        print(f"new / {base}: " + ", ".join(f"{k} {v:.3g}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
