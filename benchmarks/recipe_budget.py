"""Accuracy versus training budget of the static 100 % model, on full CIFAR-10.

The main job's cost is set by its epochs per technique; this study measures what each
budget buys. For every budget in `--epochs` it trains the dense 100 % model of the
config's architecture (the static baseline's widest model, the distillation teacher)
from scratch through the package's own `fit` (same augmentation, precision, layout and
schedule code as the pipeline), then evaluates top-1 on every test image. Each budget
gets its full schedule (warm-up and decay fitted to that budget), not a prefix of a
longer run. One CSV row per budget is appended to `--out` as soon as it finishes; a
killed study resumes from the last finished epoch of the budget it was in.

    python benchmarks/recipe_budget.py --data <cifar10 image-folder archive.tar.gz> \
        --epochs 5 8 12 --out recipe_budget.csv [--config config/config.yaml] [--set train.lr=0.1 ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from dyndnn.arch import ModelConfig
from dyndnn.config import TrainConfig, from_block
from dyndnn.learn.data import cached_archive
from dyndnn.learn.evaluate import predict
from dyndnn.learn.recipe import cpu_has_native_bf16, resolve_precision
from dyndnn.learn.slimmable import SlimmableAlexNet, width_config
from dyndnn.learn.train import fit
from dyndnn.schema import read_yaml, with_overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="image-folder archive of CIFAR-10 (e.g. the offline JPEG mirror, .tar.gz)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--epochs", type=int, nargs="+", required=True, help="budgets to measure")
    ap.add_argument("--set", nargs="*", default=[], metavar="train.KEY=VALUE", help="recipe overrides (YAML values)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    config = with_overrides(read_yaml(args.config), args.set)
    model_cfg = ModelConfig(**config["model"])
    recipe = from_block(TrainConfig, config["train"]).for_baseline()
    data = cached_archive(args.data, out.parent / "cifar10-full.pt")
    (x, y), (xt, yt) = (data["train"]["images"], data["train"]["labels"]), (data["test"]["images"], data["test"]["labels"])
    done = set()
    if out.is_file():
        done = {int(r["epochs"]) for r in csv.DictReader(out.open())}
    for epochs in args.epochs:
        if epochs in done:
            continue
        cfg = replace(recipe, epochs=epochs)
        torch.manual_seed(args.seed)
        net = SlimmableAlexNet(width_config(model_cfg, model_cfg.groups))
        t0 = time.perf_counter()
        history = fit(
            net, list(net.parameters()), x, y, cfg, args.seed, out.parent / f"resume-{out.stem}-{epochs}.pt", tag={"budget": epochs}
        )
        train_s = time.perf_counter() - t0
        top1 = (predict(net, xt).argmax(1) == yt).float().mean().item()
        row = {
            "epochs": epochs,
            "test_top1": round(top1, 4),
            "train_acc_last_epoch": round(history[-1]["train_acc"], 4),
            "train_s": round(train_s, 1),
            "epoch_s_mean": round(sum(h["epoch_s"] for h in history) / len(history), 1),
            "images_per_s": round(sum(h["images_per_s"] for h in history) / len(history), 1),
            "precision": resolve_precision(cfg.precision, torch.device("cpu")),
            "recipe": json.dumps({k: v for k, v in vars(cfg).items() if k not in ("stage_epochs", "stage_lr", "distill")}, sort_keys=True),
            "model": json.dumps(model_cfg.to_dict(), sort_keys=True),
            "n_train": len(y),
            "n_test": len(yt),
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
            "avx512_bf16": cpu_has_native_bf16(),
            "torch": torch.__version__,
            "per_epoch_train_acc": json.dumps([round(h["train_acc"], 4) for h in history]),
        }
        new = not out.is_file()
        with out.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        (out.parent / f"resume-{out.stem}-{epochs}.pt").unlink(missing_ok=True)
        print(f"{epochs} epochs: test top-1 {top1:.4f} in {train_s:.0f} s", flush=True)


if __name__ == "__main__":
    main()
