"""The "existing works" the paper compares against, in the same AlexNet family.

Scope: the networks and training of four baselines, each exposing the same
configurations k = 1..G (25/50/75/100 % width) as the dynamic DNN:

* ``static``: G independently trained dense models (model switching: all stored);
* ``slimmable``: one shared-weight network trained jointly at every width with a
  private BatchNorm per width (Yu et al., ICLR 2019: sum of the width losses);
* ``truncated``: the 100 % static model with channels cut at runtime, no retraining;
* ``pruned``: L1-norm filter pruning of the 100 % static model to each width,
  each fine-tuned (recovery needs every pruned model stored).

The networks (`SlimmableAlexNet`, `width_config`, `l1_prune`) live in `dyndnn.learn.model`,
the checkpoint and the `Technique` interface in `dyndnn.learn.technique`; this module
holds the baselines' recipes and their training job.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from dyndnn.arch import BASELINES, ModelConfig
from dyndnn.config import TrainConfig
from dyndnn.defaults import default
from dyndnn.learn.data import load_split
from dyndnn.learn.recipe import resolve_device
from dyndnn.learn.slimmable import SlimmableAlexNet, l1_prune, width_config
from dyndnn.learn.technique import Technique, checkpoint, load_technique, save_atomic
from dyndnn.learn.train import fit, write_history

__all__ = ["slimmable_loss", "train_baseline", "train_baseline_job", "train_static_width", "static_width_job"]

log = logging.getLogger(__name__)


def slimmable_loss(model: SlimmableAlexNet, xb, yb, cfg: TrainConfig, soft=None):
    """Yu et al.: the sum of the losses at every width in one step; accuracy of the full width."""
    total, logits = 0.0, None
    for k in range(1, model.groups + 1):
        model.set_active_groups(k)
        logits = model(xb)
        total = total + F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
    return total, logits


def _dense(cfg: ModelConfig, k: int, seed: int, device="cpu") -> SlimmableAlexNet:
    torch.manual_seed(seed)
    return SlimmableAlexNet(width_config(cfg, k)).to(device)


def train_static_width(cfg: ModelConfig, train_cfg: TrainConfig, x, y, seed: int, k: int, resume_path=None, device="cpu"):
    """The static baseline's dense model at width k/G, trained alone: (net, history). Each width
    is a job of its own in the pipeline, so widths train side by side and the 100 % model
    (the teacher, the source of truncated and pruned) is ready without waiting for the others."""
    net = _dense(cfg, k, seed + k, device)
    return net, fit(net, list(net.parameters()), x, y, train_cfg, seed * 1000 + k, resume_path, tag={"width": k})


def train_baseline(
    kind: str,
    cfg: ModelConfig,
    train_cfg: TrainConfig,
    x,
    y,
    seed: int,
    static: Technique | None = None,
    finetune_epochs: int = default("baselines", "pruned", "finetune_epochs"),
    resume_dir=None,
    device: str | torch.device = "cpu",
) -> tuple[Technique, list[dict]]:
    """Train (or derive) one baseline; returns the technique and its training history."""

    def resume(name):
        return f"{resume_dir}/{name}.pt" if resume_dir else None

    G, history = cfg.groups, []
    if kind == "static":
        nets = []
        for k in range(1, G + 1):
            net, width_history = train_static_width(cfg, train_cfg, x, y, seed, k, resume(f"static-w{k}"), device)
            history += width_history
            nets.append(net)
        return Technique("static", nets, cfg), history
    if kind == "slimmable":
        torch.manual_seed(seed)
        net = SlimmableAlexNet(cfg, switchable_bn=True).to(device)
        history = fit(
            net, list(net.parameters()), x, y, train_cfg, seed * 1000, resume("slimmable"), tag={"widths": G}, loss_fn=slimmable_loss
        )
        return Technique("slimmable", [net], cfg), history
    if static is None:
        raise ValueError(f"{kind} is derived from the static baseline's 100 % model: train 'static' first")
    full = static.nets[-1]
    if kind == "truncated":
        net = SlimmableAlexNet(cfg)
        net.load_state_dict(full.state_dict())  # same tensors; run at the first k/G channels
        return Technique("truncated", [net], cfg), history
    if kind == "pruned":
        nets = []
        for k in range(1, G):
            net = l1_prune(full, k, G).to(device)
            history += fit(
                net,
                list(net.parameters()),
                x,
                y,
                replace(train_cfg, epochs=finetune_epochs),
                seed * 1000 + k,
                resume(f"pruned-w{k}"),
                tag={"width": k},
            )
            nets.append(net)
        return Technique("pruned", nets + [full], cfg), history
    raise ValueError(f"unknown baseline {kind!r} (known: {', '.join(BASELINES)})")


def train_baseline_job(kind: str, data_path: str, model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int, out_ckpt: str, out_history: str,
                       static_ckpt: str | None = None, finetune_epochs: int = default("baselines", "pruned", "finetune_epochs"), resume_dir: str | None = None, threads: int = 1, device: str = "auto",
                       width_ckpts: list[str] | None = None) -> None:  # fmt: skip
    """The train_baseline rule: train or derive `kind`, save its checkpoint and history.
    `static` with `width_ckpts`: the widths trained by `static_width_job`, put together."""
    torch.set_num_threads(threads)
    device = resolve_device(device)
    if kind == "static" and width_ckpts:
        technique, history = _static_from_widths(width_ckpts, model_cfg, device)
    else:
        static = load_technique(static_ckpt, device)[0] if static_ckpt else None
        x, y = load_split(data_path)
        if resume_dir:
            Path(resume_dir).mkdir(parents=True, exist_ok=True)
        technique, history = train_baseline(kind, model_cfg, train_cfg, x, y, seed, static, finetune_epochs, resume_dir, device)
    for net in technique.nets:
        net.to(device)
    save_atomic(checkpoint(technique, train_cfg, seed, history), out_ckpt)
    write_history(history, out_history) if history else Path(out_history).write_text("note\nno training: derived at runtime\n")
    if resume_dir:
        shutil.rmtree(resume_dir, ignore_errors=True)


def _static_from_widths(paths: list[str], model_cfg: ModelConfig, device) -> tuple[Technique, list[dict]]:
    nets, history = [], []
    for k, path in enumerate(paths, start=1):
        width, raw = load_technique(path, device)
        if raw.get("width") != k or raw["model_config"] != model_cfg.to_dict():
            raise ValueError(f"{path}: not width {k} of this architecture (width {raw.get('width')}, {raw['model_config']})")
        nets += width.nets
        history += raw["history"]
    return Technique("static", nets, model_cfg), history


def static_width_job(data_path: str, model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int, k: int, out_ckpt: str, out_history: str,
                     resume_path: str | None = None, threads: int = 1, device: str = "auto") -> None:  # fmt: skip
    """The train_static_width rule: width k of the static baseline. Its checkpoint holds the one
    net (its last net is the dense 100 % model when k = G: the teacher, the source of truncated
    and pruned)."""
    torch.set_num_threads(threads)
    x, y = load_split(data_path)
    net, history = train_static_width(model_cfg, train_cfg, x, y, seed, k, resume_path, resolve_device(device))
    save_atomic({**checkpoint(Technique("static", [net], model_cfg), train_cfg, seed, history), "width": k}, out_ckpt)
    write_history(history, out_history)
    if resume_path:
        Path(resume_path).unlink(missing_ok=True)
