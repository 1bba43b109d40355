"""Anytime inference: the cost of upgrading an answer from k to k+1 groups against
computing k+1 groups from scratch, on this host (issue 7 target: 3 -> 4 costs at
most 60 % of a fresh 4-group pass). Both the dynamic model's own forward and the
materialised static 4-group network (what is exported) are shown as baselines.

    python benchmarks/bench_anytime.py [--config config/laptop.yaml] [--batch 1] [--repeats 200]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from dyndnn.learn.anytime import IncrementalRunner
from dyndnn.learn.model import GroupedAlexNet, ModelConfig
from dyndnn.schema import read_yaml


def median_ms(fn, repeats: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/laptop.yaml")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GroupedAlexNet(ModelConfig(**read_yaml(args.config)["model"])).eval()
    G = model.groups
    x = torch.randn(args.batch, 3, 32, 32)
    runner = IncrementalRunner(model)
    print(f"# bench_anytime: {args.config}, batch {args.batch}, {args.threads} threads, torch {torch.__version__}, {platform.machine()}")
    print(f"{'upgrade':>8} {'upgrade_ms':>11} {'fresh_dynamic_ms':>17} {'ratio':>6} {'fresh_static_ms':>16} {'ratio':>6}")
    with torch.no_grad():
        for k in range(1, G):
            runner.start(x, k)  # the answer at k groups: untimed
            saved = runner.convs, runner.fcs, runner.logits

            def step(saved=saved):  # upgrade a copy of the k-group state to k + 1 groups
                runner.convs, runner.fcs, runner.logits = [list(c) for c in saved[0]], [list(f) for f in saved[1]], saved[2]
                runner.upgrade()

            up = median_ms(step, args.repeats)
            with model.at_groups(k + 1):
                dyn = median_ms(lambda: model(x), args.repeats)
            static = model.materialize(k + 1)
            st = median_ms(lambda static=static: static(x), args.repeats)
            print(f"{k:>3}->{k + 1:<3} {up:>11.3f} {dyn:>17.3f} {up / dyn:>6.2f} {st:>16.3f} {up / st:>6.2f}")


if __name__ == "__main__":
    main()
