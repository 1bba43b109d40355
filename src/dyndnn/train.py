"""Incremental training of the grouped AlexNet, one stage per group.

Scope: augmentation, the optimiser/schedule registry, one epoch, one stage
with per-epoch resume checkpoints, and the checkpoint format. Stage k trains
group k alone: `GroupedAlexNet.prepare_stage` freezes groups < k (weights and BN
statistics) and hands only group-k parameters to the optimiser.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dyndnn.config import TrainConfig
from dyndnn.model import GroupedAlexNet, ModelConfig

__all__ = ["resolve_device", "normalize", "augment", "distillation_loss", "train_one_epoch", "fit_stage", "train_increment", "load_model", "save_atomic"]

log = logging.getLogger(__name__)

# CIFAR-10 channel statistics of the training set (the usual values).
MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device(name)


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU computes bf16 natively (AVX512_BF16 or AMX-BF16 in its flags)."""
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(name: str, device: torch.device) -> str:
    """train.precision -> the precision training runs in: bf16 autocast where the device runs
    it natively (CUDA with bf16, or a CPU with AVX512_BF16 / AMX), else fp32 (`auto`);
    asking for bf16 elsewhere is an error naming the key."""
    if name not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {PRECISIONS}, got {name!r}")
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu" and cpu_has_native_bf16()
    if name == "bf16" and not native:
        raise ValueError(f"train.precision is 'bf16' but the training device ({device.type}) has no native bf16 (CUDA with bf16, or a CPU with AVX512_BF16 or AMX); use 'auto' or 'fp32'")
    return "bf16" if name == "bf16" or (name == "auto" and native) else "fp32"


def to_layout(module: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """Conv weights in channels_last when cfg.channels_last (values unchanged, strides only)."""
    return module.to(memory_format=torch.channels_last) if cfg.channels_last else module


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float normalised with the CIFAR-10 statistics."""
    return (x.float() / 255.0 - MEAN.to(x.device)) / STD.to(x.device)


def augment(x: torch.Tensor, padding: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding and horizontal flip of every image of the batch at once
    (one gather, no per-image loop); uint8 in, uint8 out."""
    B, _, H, W = x.shape
    if padding:
        padded = F.pad(x, (padding,) * 4)
        dy, dx = torch.randint(0, 2 * padding + 1, (2, B), generator=gen)
        windows = padded.unfold(2, H, 1).unfold(3, W, 1)  # (B, C, 2p+1, 2p+1, H, W), a view
        x = windows[torch.arange(B), :, dy, dx]  # (B, C, H, W): image i's window at (dy_i, dx_i)
    if hflip:
        flip = torch.rand(B, generator=gen) < 0.5
        x = torch.where(flip.view(B, 1, 1, 1), x.flip(3), x)
    return x


def build_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)


SCHEDULES = {  # per-step schedulers; total = epochs * steps_per_epoch
    "cosine": lambda opt, cfg, steps: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps),
    "step": lambda opt, cfg, steps: torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size * steps, gamma=cfg.gamma),
    "onecycle": lambda opt, cfg, steps: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps),
    "constant": lambda opt, cfg, steps: torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
}


def cross_entropy_loss(model, xb, yb, cfg: TrainConfig):
    """The default objective: (loss, logits used for the running accuracy)."""
    logits = model(xb)
    return F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing), logits


def distillation_loss(teacher: torch.nn.Module):
    """(1 - a) * CE + a * T^2 * KL(softmax(teacher / T) || softmax(student / T)), a = cfg.distill.
    The teacher runs in eval mode without gradients: its weights and BN statistics never change."""
    teacher.eval().requires_grad_(False)

    def loss_fn(model, xb, yb, cfg: TrainConfig):  # runs under the student's autocast: the teacher too
        ce, logits = cross_entropy_loss(model, xb, yb, cfg)
        with torch.no_grad():
            target = F.softmax(teacher(xb) / cfg.distill_temperature, dim=1)
        kd = F.kl_div(F.log_softmax(logits / cfg.distill_temperature, dim=1), target, reduction="batchmean") * cfg.distill_temperature**2
        return (1 - cfg.distill) * ce + cfg.distill * kd, logits

    return loss_fn


def train_one_epoch(model, x, y, opt, sched, cfg: TrainConfig, gen: torch.Generator, device, desc: str = "", loss_fn=cross_entropy_loss, precision: str = "fp32") -> dict:
    """One pass over (x, y) in shuffled batches; returns loss, accuracy and images/s. The
    forward pass (and loss) runs under bf16 autocast when `precision` is bf16; weights,
    gradients, BN statistics and the optimiser state stay fp32."""
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.train()
    order = torch.randperm(len(y), generator=gen)
    total_loss, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
    batches = range(0, len(y), cfg.batch_size)
    bar = tqdm(batches, desc=desc, unit="batch", file=sys.stderr, mininterval=1 if sys.stderr.isatty() else 30, leave=False)
    for start in bar:
        idx = order[start : start + cfg.batch_size]
        xb = normalize(augment(x[idx], cfg.crop_padding, cfg.hflip, gen).to(device)).contiguous(memory_format=memory_format)
        yb = y[idx].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, logits = loss_fn(model, xb, yb, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += loss.item() * len(idx)
        correct += (logits.argmax(1) == yb).sum().item()
        seen += len(idx)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{seen / (time.perf_counter() - t0):.0f}", refresh=False)
    elapsed = time.perf_counter() - t0
    return {"loss": total_loss / seen, "train_acc": correct / seen, "images_per_s": seen / elapsed, "epoch_s": elapsed}


def save_atomic(obj, path: str | Path) -> None:
    """torch.save to a temporary sibling, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit_stage(model: GroupedAlexNet, k: int, x, y, cfg: TrainConfig, seed: int, resume_path: str | Path | None = None, teacher: torch.nn.Module | None = None) -> list[dict]:
    """Train incremental stage k (groups < k frozen) with the stage's recipe; resumable.
    With cfg.distill > 0 the stage also matches `teacher`'s softened outputs."""
    if cfg.distill > 0 and teacher is None:
        raise ValueError("train.distill > 0 needs a teacher model (the static baseline's 100 % model)")
    model.train()
    params = model.prepare_stage(k)
    loss_fn = distillation_loss(to_layout(teacher, cfg)) if cfg.distill > 0 else cross_entropy_loss
    history = fit(model, params, x, y, cfg.for_stage(k), seed * 1000 + k, resume_path, tag={"stage": k}, loss_fn=loss_fn)
    model.frozen_groups = 0
    return history


def fit(model, params, x, y, cfg: TrainConfig, seed: int, resume_path: str | Path | None = None, tag: dict | None = None, loss_fn=cross_entropy_loss) -> list[dict]:
    """Optimise `params` of `model` for cfg.epochs with the configured recipe.

    A resume checkpoint is written after every epoch (model, optimiser, schedule,
    RNG states) and only used when its fingerprint matches these inputs, so a
    killed job continues where it stopped and ends with the same weights.
    """
    tag = tag or {}
    device = next(model.parameters()).device
    precision = resolve_precision(cfg.precision, device)
    to_layout(model, cfg).train()
    opt = build_optimizer(params, cfg)
    steps = -(-len(y) // cfg.batch_size)
    sched = SCHEDULES[cfg.schedule](opt, cfg, steps)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    fingerprint = _fingerprint(asdict(cfg), getattr(model, "cfg", ModelConfig()).to_dict(), seed, tag, len(y))
    history, start_epoch = [], 0
    label = " ".join(f"{k} {v}" for k, v in tag.items())
    if resume_path and Path(resume_path).exists():
        state = torch.load(resume_path, weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history, start_epoch = state["history"], state["epoch"]
            log.info("%s: resumed after epoch %d from %s", label, start_epoch, resume_path)
        else:
            log.warning("%s: ignoring %s (made with other settings)", label, resume_path)
    for epoch in range(start_epoch, cfg.epochs):
        stats = train_one_epoch(model, x, y, opt, sched, cfg, gen, device, desc=f"{label} epoch {epoch + 1}/{cfg.epochs}", loss_fn=loss_fn, precision=precision)
        stats.update(**tag, epoch=epoch + 1, lr=opt.param_groups[0]["lr"], precision=precision, channels_last=cfg.channels_last)
        history.append(stats)
        log.info("%s epoch %d: %s", label, epoch + 1, {n: round(v, 4) if isinstance(v, float) else v for n, v in stats.items()})
        if resume_path:
            save_atomic(
                {
                    "fingerprint": fingerprint,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "epoch": epoch + 1,
                },
                resume_path,
            )
    model.eval()
    return history


def make_checkpoint(model: GroupedAlexNet, kind: str, stage: int, cfg: TrainConfig, seed: int, history: list[dict]) -> dict:
    """Checkpoints carry their architecture and training config (torchvision-style)."""
    return {
        "kind": kind,
        "stage": stage,
        "model_config": model.cfg.to_dict(),
        "train_config": asdict(cfg),
        "seed": seed,
        "precision": history[-1].get("precision", "fp32") if history else None,  # what the last epoch ran in
        "history": history,
        "state_dict": model.state_dict(),
    }


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> GroupedAlexNet:
    """The dynamic DNN of a loaded checkpoint, in eval mode."""
    model = GroupedAlexNet(ModelConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[GroupedAlexNet, dict]:
    ckpt = torch.load(path, map_location=device, weights_only=False)
    return model_from_checkpoint(ckpt, device), ckpt


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
    teacher_ckpt: str | None = None,
) -> None:
    """Run incremental stage `stage`: load stage-1 weights (or initialise), train group `stage`, save.
    `teacher_ckpt`: the static baseline whose 100 % model teaches when cfg.distill > 0."""
    from dyndnn.data import load_split

    torch.set_num_threads(cfg.threads or threads)
    device = resolve_device(cfg.device)
    if previous_ckpt:
        model, prev = load_model(previous_ckpt, device)
        if prev["model_config"] != model_cfg.to_dict():
            raise ValueError(f"{previous_ckpt} was trained with another architecture: {prev['model_config']}")
        history = list(prev["history"])
    else:
        torch.manual_seed(seed)  # initial weights of every group
        model, history = GroupedAlexNet(model_cfg).to(device), []
    teacher = None
    if cfg.distill > 0:
        from dyndnn.baselines import load_technique

        teacher = load_technique(teacher_ckpt, device)[0].nets[-1]
    x, y = load_split(data_path)
    t0 = time.perf_counter()
    history += fit_stage(model, stage, x, y, cfg, seed, resume_path, teacher)
    log.info("stage %d done in %.1f s", stage, time.perf_counter() - t0)
    save_atomic(make_checkpoint(model, "dynamic", stage, cfg, seed, history), out_ckpt)
    write_history(history, out_history)
    if resume_path:
        Path(resume_path).unlink(missing_ok=True)
