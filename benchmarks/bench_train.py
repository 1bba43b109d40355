"""Training throughput of every technique: fp32 against the chosen precision and layout.

Runs the package's own training epoch (`dyndnn.train.train_one_epoch`: batch
augmentation, normalisation, forward under autocast where bf16, backward, SGD step) on
`--images` random uint8 images for every technique the main job trains: each static
width, the slimmable network (all widths per step), and each incremental stage of the
dynamic DNN (groups < k frozen; with the static 100 % model as teacher when the config
distils). Each is measured twice in this run, fp32 + contiguous and in the precision
`auto` resolves to on this machine + channels_last, after a warm-up epoch; prints
images/s of both and their ratio (target >= 2x on a CPU with AVX512_BF16).

    python benchmarks/bench_train.py [--config config/config.yaml] [--images 1024] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import replace

import torch

from dyndnn.baselines import slimmable_loss
from dyndnn.config import TrainConfig, read_yaml
from dyndnn.model import GroupedAlexNet, ModelConfig, SlimmableAlexNet, width_config
from dyndnn.train import build_optimizer, cross_entropy_loss, distillation_loss, resolve_precision, to_layout, train_one_epoch


def images_per_s(model, params, x, y, cfg: TrainConfig, loss_fn=cross_entropy_loss, teacher=None) -> float:
    precision = resolve_precision(cfg.precision, torch.device("cpu"))
    to_layout(model, cfg).train()
    if teacher is not None:
        loss_fn = distillation_loss(to_layout(teacher, cfg))
    opt = build_optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    gen = torch.Generator().manual_seed(0)
    warm = cfg.batch_size * 2
    train_one_epoch(model, x[:warm], y[:warm], opt, sched, cfg, gen, torch.device("cpu"), loss_fn=loss_fn, precision=precision)
    return train_one_epoch(model, x, y, opt, sched, cfg, gen, torch.device("cpu"), loss_fn=loss_fn, precision=precision)["images_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = read_yaml(args.config)
    model_cfg = ModelConfig(**config["model"])
    train_keys = {k: v for k, v in config["train"].items() if k in TrainConfig.__dataclass_fields__}
    fast = TrainConfig(**{**train_keys, "precision": "auto", "channels_last": True})
    fp32 = replace(fast, precision="fp32", channels_last=False)
    G = model_cfg.groups
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (args.images,), generator=gen)
    chosen = resolve_precision("auto", torch.device("cpu"))
    print(
        f"# bench_train: {args.config} ({model_cfg.connectivity}, G={G}, fc={list(model_cfg.fc_features)}, head {model_cfg.head}), batch {fast.batch_size}, "
        f"{args.images} images per point, {args.threads} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}; chosen: {chosen} + channels_last"
    )
    print(f"{'technique':<28} {'fp32_img_s':>10} {'chosen_img_s':>12} {'ratio':>6}")

    def fresh(kind, k=None):
        torch.manual_seed(0)
        if kind == "static":
            net = SlimmableAlexNet(width_config(model_cfg, k))
            return net, list(net.parameters()), {}
        if kind == "slimmable":
            net = SlimmableAlexNet(model_cfg, switchable_bn=True)
            return net, list(net.parameters()), {"loss_fn": slimmable_loss}
        net = GroupedAlexNet(model_cfg).train()
        teacher = SlimmableAlexNet(width_config(model_cfg, G)).eval() if fast.distill > 0 else None
        return net, net.prepare_stage(k), {"teacher": teacher}

    jobs = [(f"static {100 * k // G} %", "static", k) for k in range(1, G + 1)] + [("slimmable (all widths)", "slimmable", None)]
    jobs += [(f"dynamic stage {k}" + (" + teacher" if fast.distill > 0 else ""), "dynamic", k) for k in range(1, G + 1)]
    ratios = []
    for label, kind, k in jobs:
        rates = []
        for cfg in (fp32, fast):
            net, params, kw = fresh(kind, k)
            rates.append(images_per_s(net, params, x, y, cfg, **kw))
        ratios.append(rates[1] / rates[0])
        print(f"{label:<28} {rates[0]:>10.1f} {rates[1]:>12.1f} {ratios[-1]:>5.2f}x", flush=True)
    print(f"min ratio: {min(ratios):.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
