"""Training throughput: incremental stage k against dense training of the same active width.

For k = 1..G prints images/s of (a) incremental stage k of the grouped AlexNet
(groups < k frozen, computed without autograd) and (b) a plain dense AlexNet
whose widths equal the k-group configuration, trained on all its parameters;
and their ratio, all measured in this run on the same random batches.
Targets (issue 3): every ratio >= 0.9, and stage G faster than dense full width.

    python benchmarks/bench_train.py [--config config/quick.yaml] [--batches 12] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from dyndnn.config import read_yaml
from dyndnn.model import GroupedAlexNet, ModelConfig
from dyndnn.train import normalize


def images_per_s(model, params, batches, warmup=2) -> float:
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True)
    times = []
    for i, (x, y) in enumerate(batches):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(normalize(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    return len(batches[0][1]) / times[len(times) // 2]  # median step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model_cfg = ModelConfig(**read_yaml(args.config)["model"])
    G = model_cfg.groups
    gen = torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(0, 256, (args.batch_size, 3, 32, 32), dtype=torch.uint8, generator=gen), torch.randint(0, 10, (args.batch_size,), generator=gen))
        for _ in range(args.batches)
    ]
    print(f"# bench_train: {args.config} ({model_cfg.connectivity}, G={G}, fc={list(model_cfg.fc_features)}), batch {args.batch_size}, "
          f"{args.threads} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print(f"{'k':>2} {'stage_img_s':>12} {'dense_img_s':>12} {'ratio':>6}")
    torch.manual_seed(0)
    grouped = GroupedAlexNet(model_cfg)
    results = {}
    for k in range(1, G + 1):
        grouped.train()
        stage = images_per_s(grouped, grouped.prepare_stage(k), batches)
        dense_cfg = ModelConfig(
            groups=1, connectivity="nested", head="sum", dropout=model_cfg.dropout,
            conv_channels=[c * k // G for c in model_cfg.conv_channels], fc_features=[f * k // G for f in model_cfg.fc_features],
        )  # fmt: skip
        dense = GroupedAlexNet(dense_cfg).train()
        results[k] = (stage, images_per_s(dense, list(dense.parameters()), batches))
        print(f"{k:>2} {stage:>12.1f} {results[k][1]:>12.1f} {stage / results[k][1]:>6.2f}")
    worst = min(s / d for s, d in results.values())
    print(f"min stage/dense ratio: {worst:.2f} (target >= 0.90)")
    print(f"stage {G} vs dense full width: {results[G][0] / results[G][1]:.2f}x (target > 1)")


if __name__ == "__main__":
    main()
