"""Nested sub-networks at their MAC cost: export layouts against the static dense models.

Exports every configuration k = 1..G of a randomly initialised dynamic DNN (the
configured architecture) in the split layout (one op per output group over the input
groups it reads) and the dense layout (zero blocks), and the static dense model of the
same width, then times each with ONNX Runtime on the CPU, 1 thread, batch 1 (median
of `--repeats` x `--runs` single-image inferences after a warm-up), and prints the
latencies, the MACs each graph executes (counted from the graph) and the ratios:

    split / static (same width)   target <= 1.05 for every k, <= 0.70 for k = G
    split / dense                 the saving of executing only connected MACs

    python benchmarks/bench_layouts.py [--config config/config.yaml] [--runs 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from dyndnn.learn.export import INPUT, graph_macs, to_onnx_bytes
from dyndnn.learn.model import GroupedAlexNet, ModelConfig
from dyndnn.learn.slimmable import SlimmableAlexNet, width_config
from dyndnn.schema import read_yaml

REPO = Path(__file__).resolve().parents[1]


def median_latency_ms(onnx_bytes: bytes, runs: int, repeats: int, warmup: int = 30) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    x = {INPUT: np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)}
    for _ in range(warmup):
        sess.run(None, x)
    medians = []
    for _ in range(repeats):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, x)
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times))
    return 1e3 * statistics.median(medians)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config/config.yaml"))
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model_cfg = {k: v for k, v in read_yaml(args.config)["model"].items() if k in ModelConfig.__dataclass_fields__}
    torch.manual_seed(0)
    net = GroupedAlexNet(ModelConfig(**{**model_cfg, "connectivity": "nested"})).eval()
    G = net.groups
    print(
        f"# bench_layouts: {args.config} model {net.cfg.conv_channels} fc {net.cfg.fc_features} head {net.cfg.head}; ORT {ort.__version__} CPU, 1 thread, batch 1, median of {args.repeats} x {args.runs}"
    )
    print(
        f"{'groups':>6} {'split_ms':>9} {'dense_ms':>9} {'static_ms':>9} {'split/static':>12} {'split/dense':>11} {'MACs split':>11} {'MACs dense':>11} {'MACs static':>11}"
    )
    for k in range(1, G + 1):
        graphs = {
            "split": to_onnx_bytes(net.materialize(k, "split"), 13, 7),
            "dense": to_onnx_bytes(net.materialize(k, "dense"), 13, 7),
            "static": to_onnx_bytes(SlimmableAlexNet(width_config(net.cfg, k)).materialize(1), 13, 7),
        }
        ms = {name: median_latency_ms(g, args.runs, args.repeats) for name, g in graphs.items()}
        macs = {name: sum(graph_macs(g).values()) for name, g in graphs.items()}
        print(
            f"{k:>6} {ms['split']:>9.3f} {ms['dense']:>9.3f} {ms['static']:>9.3f} {ms['split'] / ms['static']:>12.3f} {ms['split'] / ms['dense']:>11.3f}"
            f" {macs['split'] / 1e6:>10.1f}M {macs['dense'] / 1e6:>10.1f}M {macs['static'] / 1e6:>10.1f}M"
        )


if __name__ == "__main__":
    main()
