"""Incremental training of the grouped AlexNet, one stage per group, and the one
training loop every technique uses.

Scope: one epoch, `fit` (any parameters of any network, with per-epoch resume checkpoints),
the views of every epoch, the teacher's targets, and the incremental stage job. Device,
precision, optimiser and schedules are `dyndnn.learn.recipe`'s; data, augmentation and
normalisation live in `dyndnn.learn.data`, networks in `dyndnn.learn.model`, checkpoints in
`dyndnn.learn.technique`. Stage k trains group k alone: `GroupedAlexNet.prepare_stage` freezes
groups < k (weights and BN statistics) and hands only group-k parameters to the optimiser.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dyndnn.arch import DYNAMIC, ModelConfig
from dyndnn.config import TrainConfig
from dyndnn.learn.data import apply_views, draw_views, load_split, normalize
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.recipe import SCHEDULES, build_optimizer, resolve_device, resolve_precision, to_layout
from dyndnn.learn.technique import Technique, checkpoint, load_technique, save_atomic

__all__ = [
    "distillation_loss",
    "train_one_epoch",
    "fit",
    "fit_stage",
    "train_increment",
    "write_history",
    "cross_entropy_loss",
    "epoch_views",
    "views_digest",
    "teacher_targets",
    "teacher_targets_job",
]

log = logging.getLogger(__name__)


def cross_entropy_loss(model, xb, yb, cfg: TrainConfig, soft=None):
    """The default objective: (loss, logits used for the running accuracy)."""
    logits = model(xb)
    return F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing), logits


def distillation_loss(model, xb, yb, cfg: TrainConfig, soft):
    """(1 - a) * CE + a * T^2 * KL(softmax(teacher / T) || softmax(student / T)), a = cfg.distill;
    `soft`: the teacher's logits of the batch's views (`teacher_targets`, computed once per epoch
    and shared by every stage)."""
    ce, logits = cross_entropy_loss(model, xb, yb, cfg)
    T = cfg.distill_temperature
    target = F.softmax(soft.float() / T, dim=1)
    kd = F.kl_div(F.log_softmax(logits.float() / T, dim=1), target, reduction="batchmean") * T**2
    return (1 - cfg.distill) * ce + cfg.distill * kd, logits


def _derived_seed(*parts) -> int:
    return int(hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:15], 16)


def epoch_views(n: int, cfg: TrainConfig, views_seed: int, epoch: int) -> torch.Tensor:
    """Epoch `epoch`'s augmentation of the n training images (`data.draw_views`), drawn from
    (views_seed, epoch) alone: every job with the same views seed sees the same views in that
    epoch, whatever it trains (the dynamic DNN's stages and the teacher's stored outputs)."""
    return draw_views(n, cfg.crop_padding, cfg.hflip, torch.Generator().manual_seed(_derived_seed("views", views_seed, epoch)))


def views_digest(views: torch.Tensor) -> str:
    """Short sha256 of one epoch's views: recorded per epoch, so sharing is checkable."""
    return hashlib.sha256(views.contiguous().numpy().tobytes()).hexdigest()[:16]


def train_one_epoch(
    model,
    x,
    y,
    opt,
    sched,
    cfg: TrainConfig,
    gen: torch.Generator,
    device,
    views: torch.Tensor,
    desc: str = "",
    loss_fn=cross_entropy_loss,
    precision: str = "fp32",
    soft: torch.Tensor | None = None,
) -> dict:
    """One pass over (x, y) in batches shuffled by `gen`, each image seen as `views` say; returns
    loss, accuracy and images/s. `soft`: the teacher's logits of this epoch's views (N, classes),
    handed to `loss_fn` per batch. The forward pass (and loss) runs under bf16 autocast when
    `precision` is bf16; weights, gradients, BN statistics and the optimiser state stay fp32."""
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.train()
    order = torch.randperm(len(y), generator=gen)
    total_loss, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
    batches = range(0, len(y), cfg.batch_size)
    bar = tqdm(batches, desc=desc, unit="batch", file=sys.stderr, mininterval=1 if sys.stderr.isatty() else 30, leave=False)
    for start in bar:
        idx = order[start : start + cfg.batch_size]
        xb = normalize(apply_views(x[idx], views[idx], cfg.crop_padding).to(device)).contiguous(memory_format=memory_format)
        yb = y[idx].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, logits = loss_fn(model, xb, yb, cfg, None if soft is None else soft[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += loss.item() * len(idx)
        correct += (logits.argmax(1) == yb).sum().item()
        seen += len(idx)
        bar.set_postfix(
            loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{seen / (time.perf_counter() - t0):.0f}", refresh=False
        )
    elapsed = time.perf_counter() - t0
    return {"loss": total_loss / seen, "train_acc": correct / seen, "images_per_s": seen / elapsed, "epoch_s": elapsed}


@torch.no_grad()
def teacher_targets(teacher: torch.nn.Module, x, cfg: TrainConfig, views_seed: int, epochs: int, batch_size: int = 500) -> dict:
    """The teacher's logits of every training image as each epoch's views show it (`epoch_views`),
    for epochs 0..epochs-1: computed once and shared by every incremental stage, which would
    otherwise each run the dense 100 % model forward on every batch. The teacher runs in eval
    mode (its BN statistics, so an image's logits do not depend on its batch) and in the
    precision training resolves to; it is left unchanged."""
    device = next(teacher.parameters()).device
    precision = resolve_precision(cfg.precision, device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    to_layout(teacher, cfg).eval().requires_grad_(False)
    logits, digests, t0 = [], [], time.perf_counter()
    for epoch in range(epochs):
        views = epoch_views(len(x), cfg, views_seed, epoch)
        out = []
        for i in range(0, len(x), batch_size):
            xb = normalize(apply_views(x[i : i + batch_size], views[i : i + batch_size], cfg.crop_padding).to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out.append(teacher(xb.contiguous(memory_format=memory_format)).float().cpu())
        logits.append(torch.cat(out))
        digests.append(views_digest(views))
        log.info("teacher targets epoch %d/%d (%.0f s)", epoch + 1, epochs, time.perf_counter() - t0)
    stacked = torch.stack(logits)
    return {
        "logits": stacked,  # (epochs, N, classes) float32
        "views_sha256": digests,
        "views_seed": views_seed,
        "precision": precision,
        "logits_sha256": hashlib.sha256(stacked.numpy().tobytes()).hexdigest()[:16],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit_stage(
    model: GroupedAlexNet,
    k: int,
    x,
    y,
    cfg: TrainConfig,
    seed: int,
    resume_path: str | Path | None = None,
    teacher: torch.nn.Module | None = None,
    targets: dict | None = None,
    loss_fn=None,
    extra_params=(),
) -> list[dict]:
    """Train incremental stage k (groups < k frozen) with the stage's recipe (`cfg`, which is
    `TrainConfig.for_stage(k)` of the run's recipe); resumable.
    With cfg.distill > 0 the stage also matches the teacher's softened outputs: `targets`
    (`teacher_targets`, shared by the stages), or computed here from `teacher`. Every stage
    of a seed sees the same views in a given epoch (views seed = `seed`).
    `loss_fn` (default: the recipe's distillation or cross-entropy loss) and `extra_params`
    (trained beside group k) let a study change the stage's objective, nothing else."""
    if cfg.stage_epochs or cfg.stage_lr:  # the workflow passes each stage its own recipe once (common.smk)
        raise ValueError(f"fit_stage takes stage {k}'s recipe (TrainConfig.for_stage({k})), not the stage lists")
    recipe = cfg
    if cfg.distill > 0 and targets is None:
        if teacher is None:
            raise ValueError("train.distill > 0 needs a teacher model (the static baseline's 100 % model)")
        targets = teacher_targets(teacher, x, recipe, seed, recipe.epochs)
    model.train()
    params = model.prepare_stage(k) + list(extra_params)
    distilled = cfg.distill > 0
    if loss_fn is None:  # the recipe's objective on the logits the stage learns from (`GroupedAlexNet.stage_logits`)
        objective = distillation_loss if distilled else cross_entropy_loss

        def loss_fn(model, xb, yb, cfg, soft):
            return objective(model.stage_logits, xb, yb, cfg, soft)

    history = fit(
        model,
        params,
        x,
        y,
        recipe,
        seed * 1000 + k,
        resume_path,
        tag={"stage": k},
        loss_fn=loss_fn,
        views_seed=seed,
        targets=targets if distilled else None,
    )
    model.frozen_groups = 0
    return history


def fit(
    model,
    params,
    x,
    y,
    cfg: TrainConfig,
    seed: int,
    resume_path: str | Path | None = None,
    tag: dict | None = None,
    loss_fn=cross_entropy_loss,
    views_seed: int | None = None,
    targets: dict | None = None,
) -> list[dict]:
    """Optimise `params` of `model` for cfg.epochs with the configured recipe.

    `seed` shuffles; `views_seed` (default `seed`) draws each epoch's augmentation
    (`epoch_views`); `targets`: a teacher's logits per epoch of those same views, checked
    against them (`teacher_targets`). A resume checkpoint is written after every epoch
    (model, optimiser, schedule, RNG states) and only used when its fingerprint matches
    these inputs, so a killed job continues where it stopped and ends with the same weights.
    """
    tag = tag or {}
    views_seed = seed if views_seed is None else views_seed
    if targets is not None and len(targets["views_sha256"]) < cfg.epochs:
        raise ValueError(f"teacher targets cover {len(targets['views_sha256'])} epochs, the recipe trains {cfg.epochs}")
    device = next(model.parameters()).device
    precision = resolve_precision(cfg.precision, device)
    to_layout(model, cfg).train()
    opt = build_optimizer(params, cfg)
    steps = -(-len(y) // cfg.batch_size)
    sched = SCHEDULES[cfg.schedule](opt, cfg, steps)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    teacher = targets["logits_sha256"] if targets is not None else None
    fingerprint = _fingerprint(asdict(cfg), getattr(model, "cfg", ModelConfig()).to_dict(), seed, tag, len(y), views_seed, teacher)
    label = " ".join(f"{k} {v}" for k, v in tag.items())
    history, start_epoch = _restore(resume_path, fingerprint, model, opt, sched, gen, label)
    for epoch in range(start_epoch, cfg.epochs):
        views = epoch_views(len(y), cfg, views_seed, epoch)
        digest = views_digest(views)
        if targets is not None and targets["views_sha256"][epoch] != digest:
            raise ValueError(
                f"{label}: the teacher targets of epoch {epoch + 1} were made for other views ({targets['views_sha256'][epoch]} != {digest})"
            )
        stats = train_one_epoch(
            model,
            x,
            y,
            opt,
            sched,
            cfg,
            gen,
            device,
            views,
            desc=f"{label} epoch {epoch + 1}/{cfg.epochs}",
            loss_fn=loss_fn,
            precision=precision,
            soft=targets["logits"][epoch] if targets is not None else None,
        )
        stats.update(
            **tag,
            epoch=epoch + 1,
            lr=opt.param_groups[0]["lr"],
            precision=precision,
            channels_last=cfg.channels_last,
            threads=torch.get_num_threads(),  # the weights depend on it (reductions split per thread)
            views_sha256=digest,
        )
        history.append(stats)
        log.info("%s epoch %d: %s", label, epoch + 1, {n: round(v, 4) if isinstance(v, float) else v for n, v in stats.items()})
        if resume_path:
            save_atomic(_resume_state(fingerprint, model, opt, sched, gen, history, epoch + 1), resume_path)
    model.eval()
    return history


def _resume_state(fingerprint: str, model, opt, sched, gen: torch.Generator, history: list[dict], epoch: int) -> dict:
    """Everything the next epoch depends on: weights, optimiser, schedule, both RNG states."""
    return {
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": history,
        "epoch": epoch,
    }


def _restore(resume_path, fingerprint: str, model, opt, sched, gen: torch.Generator, label: str) -> tuple[list[dict], int]:
    """(history, next epoch) of a resume checkpoint made with these inputs, its states restored;
    ([], 0) when there is none or it was made with other settings."""
    if not resume_path or not Path(resume_path).exists():
        return [], 0
    state = torch.load(resume_path, weights_only=False)
    if state.get("fingerprint") != fingerprint:
        log.warning("%s: ignoring %s (made with other settings)", label, resume_path)
        return [], 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    log.info("%s: resumed after epoch %d from %s", label, state["epoch"], resume_path)
    return state["history"], state["epoch"]


def write_history(history: list[dict], path: str | Path) -> None:
    if not history:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in history for k in row)))  # stages of older runs may lack a column
        w.writeheader()
        w.writerows(history)


def train_increment(
    data_path: str,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    stage: int,
    seed: int,
    out_ckpt: str,
    out_history: str,
    previous_ckpt: str | None = None,
    resume_path: str | None = None,
    threads: int = 1,
    targets_path: str | None = None,
    device: str = "auto",
) -> None:
    """Run incremental stage `stage`: load stage-1 weights (or initialise), train group `stage`, save.
    `targets_path`: the teacher's logits per epoch (`teacher_targets_job`) when cfg.distill > 0.
    `device` and `threads`: where it runs (runtime.device, the job's threads), not the recipe."""
    torch.set_num_threads(threads)
    device = resolve_device(device)
    if previous_ckpt:
        previous, prev = load_technique(previous_ckpt, device)
        model = previous.nets[0]
        if prev["model_config"] != model_cfg.to_dict():
            raise ValueError(f"{previous_ckpt} was trained with another architecture: {prev['model_config']}")
        history = list(prev["history"])
    else:
        torch.manual_seed(seed)  # initial weights of every group
        model, history = GroupedAlexNet(model_cfg).to(device), []
    targets = torch.load(targets_path, weights_only=False) if cfg.distill > 0 else None
    x, y = load_split(data_path)
    t0 = time.perf_counter()
    history += fit_stage(model, stage, x, y, cfg, seed, resume_path, targets=targets)
    log.info("stage %d done in %.1f s", stage, time.perf_counter() - t0)
    save_atomic(checkpoint(Technique(DYNAMIC, [model], model_cfg), cfg, seed, history, stage=stage), out_ckpt)
    write_history(history, out_history)
    if resume_path:
        Path(resume_path).unlink(missing_ok=True)


def teacher_targets_job(data_path: str, teacher_ckpt: str, cfg: TrainConfig, seed: int, epochs: int, out: str, threads: int = 1, device: str = "auto") -> None:  # fmt: skip
    """The teacher_targets rule: the static baseline's 100 % model's logits of every epoch's views,
    for the stages of one seed (`epochs`: the longest stage)."""
    torch.set_num_threads(threads)
    teacher = load_technique(teacher_ckpt, resolve_device(device))[0].nets[-1]
    x, _ = load_split(data_path)
    targets = teacher_targets(teacher, x, cfg, seed, epochs)
    targets["teacher"] = str(teacher_ckpt)
    save_atomic(targets, out)
