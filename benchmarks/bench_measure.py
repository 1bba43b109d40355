"""Measurement repeatability and scaling on this host, through the real board path.

Exports the 1- and G-group sub-networks of the configured architecture, measures
them `--repeats` times with profile_board on a board config (default: local),
and prints per mapping:
  * the run-to-run spread of the median latency of each configuration,
    (max - min) / median of the per-repetition medians (target, issue 5: < 5 %);
  * the g1/gG latency ratio next to the g1/gG MAC ratios (connected and executed).

    python benchmarks/bench_measure.py [--config config/quick.yaml] [--board config/boards/local.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from dyndnn.boards.board import load_board
from dyndnn.boards.profiling import profile_board
from dyndnn.learn.evaluate import count_macs
from dyndnn.learn.export import to_onnx_bytes
from dyndnn.learn.model import GroupedAlexNet, ModelConfig
from dyndnn.schema import read_yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config/quick.yaml"))
    ap.add_argument("--board", default=str(REPO / "config/boards/local.yaml"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    config = read_yaml(args.config)
    settings = {"warmup": 20, "min_runs": 200, "min_seconds": 2.0, "seed": 0}
    settings.update({k: v for k, v in config.get("profile", {}).items() if k in settings})
    torch.manual_seed(0)
    net = GroupedAlexNet(ModelConfig(**config["model"])).eval()
    G = net.groups
    board = load_board(args.board, REPO / "workflow/schemas/board.schema.yaml")
    probe = torch.zeros(1, 3, 32, 32)
    macs = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for k in (1, G):
            p = Path(tmp) / f"g{k}.onnx"
            p.write_bytes(to_onnx_bytes(net.materialize(k), 13, 7))
            models.append({"label": f"dynamic/g{k}", "path": str(p), "model": "dynamic", "groups": k})
            with net.at_groups(k):
                macs[k] = (count_macs(net, probe), count_macs(net.materialize(k), probe))
        runs = []
        for r in range(args.repeats):
            out = Path(tmp) / "profile" / f"rep{r}" / board["name"]
            out.parent.mkdir(parents=True)
            runs.append(profile_board(board, models, settings, out))
    print(f"# bench_measure: board {board['name']}, {args.config}, settings {settings}, {args.repeats} repetitions")
    print(f"{'mapping':<12} {'groups':>6} {'medians_ms':<40} {'spread':>7}")
    for mapping in runs[0]["mapping"].unique():
        med = {}
        for k in (1, G):
            values = [float(run[(run.mapping == mapping) & (run.groups == k)]["p50_ms"].iloc[0]) for run in runs]
            med[k] = statistics.median(values)
            spread = (max(values) - min(values)) / med[k]
            print(f"{mapping:<12} {k:>6} {' '.join(f'{v:.3f}' for v in values):<40} {spread:>6.1%}")
        print(
            f"{mapping:<12} latency g1/g{G} = {med[1] / med[G]:.3f};  MACs g1/g{G}: connected {macs[1][0] / macs[G][0]:.3f}, executed {macs[1][1] / macs[G][1]:.3f}"
        )


if __name__ == "__main__":
    main()
