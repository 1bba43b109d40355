"""Training throughput of every technique at steady state: fp32 against the chosen precision.

Runs the package's own training epoch (`dyndnn.learn.train.train_one_epoch`: the epoch's views,
batch augmentation, normalisation, forward under autocast where bf16, backward, fused SGD
step) for every technique the main job trains: each static width, the slimmable network
(all widths per step) and each incremental stage of the dynamic DNN (groups < k frozen;
with the teacher's shared logits when the config distils), plus the teacher-targets pass
(the static 100 % model's inference over one epoch's views, once for all stages). Each
point first runs `--warmup` batches (oneDNN primitives, autocast weight casts, optimiser
state), then times `--batches` full batches: the steady state a real epoch runs at (check
against a job's history: `images_per_s` of results/models/*/seed0/*history.csv).

Prints per technique the images/s in fp32 + contiguous and in the precision `auto`
resolves to on this machine + channels_last, and their ratio (target >= 2x on a CPU with
AVX512_BF16); the slimmable step against the four static widths trained in sequence
(target >= 0.9x); and what sharing the teacher's logits saves per epoch of the four stages.

    python benchmarks/bench_train.py [--config config/config.yaml] [--batches 30] [--warmup 5] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import torch

from dyndnn.config import TrainConfig, from_block
from dyndnn.learn.baselines import slimmable_loss
from dyndnn.learn.model import GroupedAlexNet, ModelConfig
from dyndnn.learn.recipe import build_optimizer, cpu_has_native_bf16, resolve_precision, to_layout
from dyndnn.learn.slimmable import SlimmableAlexNet, width_config
from dyndnn.learn.train import cross_entropy_loss, distillation_loss, epoch_views, teacher_targets, train_one_epoch
from dyndnn.schema import read_yaml


def images_per_s(model, params, x, y, cfg: TrainConfig, warmup: int = 5, loss_fn=cross_entropy_loss, soft=None) -> float:
    """Steady-state training images/s: `warmup` batches untimed, then the rest of x timed."""
    if len(x) <= warmup * cfg.batch_size:
        raise ValueError(f"{len(x)} images leave nothing to time after {warmup} warm-up batches of {cfg.batch_size}")
    precision = resolve_precision(cfg.precision, torch.device("cpu"))
    to_layout(model, cfg).train()
    opt = build_optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    gen = torch.Generator().manual_seed(0)
    views = epoch_views(len(y), cfg, 0, 0)
    w = warmup * cfg.batch_size
    args = (opt, sched, cfg, gen, torch.device("cpu"))
    kw = {"loss_fn": loss_fn, "precision": precision}
    train_one_epoch(model, x[:w], y[:w], *args, views[:w], soft=None if soft is None else soft[:w], **kw)
    return train_one_epoch(model, x[w:], y[w:], *args, views[w:], soft=None if soft is None else soft[w:], **kw)["images_per_s"]


def teacher_images_per_s(teacher, x, cfg: TrainConfig, warmup: int) -> tuple[float, torch.Tensor]:
    """The teacher-targets pass (inference over one epoch's views): images/s, and the logits."""
    teacher_targets(teacher, x[: warmup * cfg.batch_size], cfg, 0, 1)
    t0 = time.perf_counter()
    logits = teacher_targets(teacher, x, cfg, 0, 1)["logits"][0]
    return len(x) / (time.perf_counter() - t0), logits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--batches", type=int, default=30, help="timed batches per point (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed batches per point")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--only", default="", help="measure only the techniques whose label contains this (e.g. 'stage 2')")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = read_yaml(args.config)
    model_cfg = ModelConfig(**config["model"])
    fast = replace(from_block(TrainConfig, config["train"]), precision="auto", channels_last=True)
    fp32 = replace(fast, precision="fp32", channels_last=False)
    G = model_cfg.groups
    n = (args.warmup + args.batches) * fast.batch_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    chosen = resolve_precision("auto", torch.device("cpu"))
    print(
        f"# bench_train: {args.config} ({model_cfg.connectivity}, G={G}, conv {list(model_cfg.conv_channels)}, fc {list(model_cfg.fc_features)}, "
        f"head {model_cfg.head}), batch {fast.batch_size}, {args.warmup} warm-up + {args.batches} timed batches per point, {args.threads} threads, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, avx512_bf16/amx_bf16: {cpu_has_native_bf16()}; chosen: {chosen} + channels_last"
    )
    print(f"{'technique':<34} {'fp32_img_s':>10} {'chosen_img_s':>12} {'ratio':>6}")
    rates: dict[str, list[float]] = {}

    def wanted(label):
        return args.only in label

    def show(label, pair):
        rates[label] = pair
        print(f"{label:<34} {pair[0]:>10.1f} {pair[1]:>12.1f} {pair[1] / pair[0]:>5.2f}x", flush=True)

    teachers = {}  # precision -> the trained-shape 100 % model
    for k in range(1, G + 1):
        if not wanted(f"static {100 * k // G} %") and not (k == G and fast.distill > 0):
            continue
        pair = []
        for cfg in (fp32, fast):
            torch.manual_seed(0)
            net = SlimmableAlexNet(width_config(model_cfg, k))
            pair.append(images_per_s(net, list(net.parameters()), x, y, cfg, args.warmup))
            if k == G and fast.distill > 0:  # the trained-shape 100 % model as the teacher
                teachers[cfg.precision] = net
        show(f"static {100 * k // G} %", pair)
    if wanted("slimmable (all widths per step)"):
        pair = []
        for cfg in (fp32, fast):
            torch.manual_seed(0)
            net = SlimmableAlexNet(model_cfg, switchable_bn=True)
            pair.append(images_per_s(net, list(net.parameters()), x, y, cfg, args.warmup, loss_fn=slimmable_loss))
        show("slimmable (all widths per step)", pair)
    soft = {}
    if fast.distill > 0:
        pair = []
        for cfg in (fp32, fast):
            rate, soft[cfg.precision] = teacher_images_per_s(teachers[cfg.precision], x, cfg, args.warmup)
            pair.append(rate)
        show("teacher targets (inference, 1x)", pair)
    for k in range(1, G + 1):
        if not wanted(f"dynamic stage {k}"):
            continue
        pair = []
        for cfg in (fp32, fast):
            torch.manual_seed(0)
            net = GroupedAlexNet(model_cfg).train()
            params = net.prepare_stage(k)
            loss = distillation_loss if cfg.distill > 0 else cross_entropy_loss
            pair.append(images_per_s(net, params, x, y, cfg, args.warmup, loss_fn=loss, soft=soft.get(cfg.precision)))
        show(f"dynamic stage {k}" + (" (shared targets)" if fast.distill > 0 else ""), pair)

    training = [label for label in rates if not label.startswith("teacher")]
    ratios = [rates[label][1] / rates[label][0] for label in training]
    print(f"min ratio chosen/fp32 over the training steps: {min(ratios):.2f}x (target >= 2x with AVX512_BF16)")
    if args.only:
        return
    for i, name in enumerate(("fp32", chosen)):
        sequence = 1 / sum(1 / rates[f"static {100 * k // G} %"][i] for k in range(1, G + 1))
        print(
            f"slimmable / static widths in sequence ({name}): {rates['slimmable (all widths per step)'][i] / sequence:.2f}x (target >= 0.9x)"
        )
    if fast.distill > 0:
        i = 1
        stages = sum(1 / rates[label][i] for label in rates if label.startswith("dynamic"))
        shared = stages + 1 / rates["teacher targets (inference, 1x)"][i]
        online = stages + G / rates["teacher targets (inference, 1x)"][i]
        print(
            f"four stages per 50,000 images ({chosen}): {50_000 * shared:.0f} s with the teacher's logits shared, "
            f"{50_000 * online:.0f} s with the teacher run in every stage ({online / shared:.2f}x)"
        )


if __name__ == "__main__":
    main()
