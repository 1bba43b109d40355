"""What each added group buys under a design of the dynamic DNN: stages 1..G from scratch, full data.

Trains the dynamic DNN's stages one after another through the package's own `fit_stage` (the
pipeline's recipe, views, precision and objective, `GroupedAlexNet.stage_logits`) with the
config's model, or another design given by `--set model.connectivity=... model.head=...`, and
after every stage reports top-1 of configuration k on every test image, and, for the `sum` and
`ensemble` heads, each group's own top-1 (head j on group j's features alone). Without
`--targets` the stages train without distillation (no teacher needed); with it they learn from
that teacher's logits (a main-job run's `results/models/dynamic/seed0/teacher_targets.pt`).
One JSON line per stage is appended to `--out` as soon as the stage ends.

    python benchmarks/group_designs.py --data <cifar10 image-folder archive.tar.gz> --out designs.jsonl \
        --set model.connectivity=grouped model.head=ensemble [--targets <run>/results/models/dynamic/seed0/teacher_targets.pt]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from dyndnn.arch import ModelConfig
from dyndnn.config import TrainConfig, from_block
from dyndnn.learn.data import cached_archive, normalize
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.recipe import cpu_has_native_bf16, resolve_precision
from dyndnn.learn.train import fit_stage
from dyndnn.schema import read_yaml, with_overrides


@torch.no_grad()
def top1(net: GroupedAlexNet, k: int, xt, yt) -> dict:
    """Top-1 of configuration k and, for per-group heads, of each group's own head."""
    net.eval()
    net.set_active_groups(k)
    logits, own = [], []
    for i in range(0, len(yt), 1000):
        xb = normalize(xt[i : i + 1000])
        hs = net.forward_features(xb)
        logits.append(net.head_logits(hs))
        if net.cfg.head != "per_config":
            own.append(torch.stack([net.heads[j](hs[j]) for j in range(k)]))
    row = {"k": k, "top1": round((torch.cat(logits).argmax(1) == yt).float().mean().item(), 4)}
    if own:
        per_group = torch.cat(own, dim=1)  # (k, N, classes)
        row["own_top1"] = [round((per_group[j].argmax(1) == yt).float().mean().item(), 4) for j in range(k)]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="image-folder archive of CIFAR-10 (e.g. the offline JPEG mirror, .tar.gz)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="model or train overrides (YAML values)")
    ap.add_argument("--targets", type=Path, help="a teacher's targets (teacher_targets.pt): distil from it (else no distillation)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = with_overrides(read_yaml(args.config), args.set)
    model_cfg = from_block(ModelConfig, config["model"])
    recipe = from_block(TrainConfig, config["train"])
    targets = torch.load(args.targets, weights_only=False) if args.targets else None
    if targets is None:
        recipe = replace(recipe, distill=0.0)
    data = cached_archive(args.data, args.out.parent / "cifar10-full.pt")
    (x, y), (xt, yt) = (data["train"]["images"], data["train"]["labels"]), (data["test"]["images"], data["test"]["labels"])
    torch.manual_seed(args.seed)
    net = GroupedAlexNet(model_cfg)
    for k in range(1, model_cfg.groups + 1):
        cfg = recipe.for_stage(k)
        t0 = time.perf_counter()
        history = fit_stage(net, k, x, y, cfg, args.seed, targets=targets if cfg.distill > 0 else None)
        row = {
            **top1(net, k, xt, yt),
            "train_acc_last_epoch": round(history[-1]["train_acc"], 4),
            "stage_s": round(time.perf_counter() - t0, 1),
            "model": {n: model_cfg.to_dict()[n] for n in ("connectivity", "head", "fc_features", "dropout")},
            "epochs": cfg.epochs,
            "distill": cfg.distill,
            "teacher": str(args.targets) if targets is not None else None,
            "precision": resolve_precision(cfg.precision, torch.device("cpu")),
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
            "avx512_bf16": cpu_has_native_bf16(),
            "n_train": len(y),
            "n_test": len(yt),
        }
        print(json.dumps(row), flush=True)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
