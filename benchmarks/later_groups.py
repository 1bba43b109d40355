"""What do the dynamic DNN's later groups add? Stage-2 variants from a finished run's stage 1.

A study of the design the main job had before 34d304f (nested groups, one head per
configuration); `benchmarks/group_designs.py` trains other designs from scratch.

A main-job run (`make reproduce`) leaves every stage's checkpoint in its results folder. This
study takes that run's stage-1 model (group 1 trained, frozen from here on) and trains
stage 2 again with one change of recipe per variant, through the package's own `fit_stage`
(same data, views, schedule, precision and teacher targets as the pipeline's job), then
reports top-1 at 1 and 2 groups on every test image. `--features` instead reads the run's
own stage 2..G checkpoints and reports, per stage, top-1 with all features at the head, with
the newest group's features zeroed, and with the newest group's features alone.

    python benchmarks/later_groups.py --run <run dir>/results --variants base nodistill pure_ce
    python benchmarks/later_groups.py --run <run dir>/results --features
    python benchmarks/later_groups.py --run <run dir>/results --ensembles

Variants: base (the run's recipe), nodistill (train.distill 0), pure_ce (no distillation, no
label smoothing), lr3 (3x the peak LR), headdrop (dropout 0.5 on the frozen groups' features at
the head), groupdrop (the frozen groups' features zeroed at the head for half the samples),
grouped (group 2 reads only its own channels: `model.connectivity: grouped`, group 1 unchanged),
short_stage1 (group 1 trained again first, with half the epochs), aux (group 2's features alone
also feed a training-only head with its own cross-entropy: deep supervision). `--ensembles`
averages the run's independently trained 25 % models instead (no training).
One JSON line per variant is appended to `--out`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from dyndnn.config import TrainConfig, from_block
from dyndnn.learn.data import load_split, normalize
from dyndnn.learn.evaluate import predict
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.technique import load_technique
from dyndnn.learn.train import cross_entropy_loss, distillation_loss, fit_stage
from dyndnn.schema import read_yaml

RECIPES = {
    "base": {},
    "nodistill": {"distill": 0.0},
    "pure_ce": {"distill": 0.0, "label_smoothing": 0.0},
    "lr3": {"lr_scale": 3.0},
}
HEAD_DROPOUT = {"headdrop": ("features", 0.5), "groupdrop": ("samples", 0.5)}
SHORT_STAGE1 = "short_stage1"  # group 1 retrained with half the epochs (the run's recipe otherwise)
GROUPED = "grouped"  # group 2 reads only its own channels (block-diagonal); group 1 is the same network
AUX = "aux"  # deep supervision: group 2's features alone also feed a training-only head, with its own CE loss
PARTS = (*RECIPES, *HEAD_DROPOUT, GROUPED, SHORT_STAGE1, AUX)  # what a variant is made of, joined by +


def regrouped(net: GroupedAlexNet, connectivity: str, seed: int = 0) -> GroupedAlexNet:
    """The same group 1 (weights and BN statistics) in a network of another connectivity: group
    1 reads only itself under every connectivity, so its modules carry over unchanged."""
    torch.manual_seed(seed)
    other = GroupedAlexNet(replace(net.cfg, connectivity=connectivity))
    for mine, theirs in zip(other.group_modules(0), net.group_modules(0)):
        mine.load_state_dict(theirs.state_dict())
    return other


def head_dropout(net, how: str, p: float) -> None:
    """Train-time dropout of the frozen groups' last features where the head reads them:
    per feature (`features`) or the whole frozen block per sample (`samples`)."""

    def forward(x):
        hs = net.forward_features(x)
        if net.training and net.frozen_groups:
            f = net.frozen_groups
            if how == "features":
                hs = [F.dropout(h, p, training=True) if j < f else h for j, h in enumerate(hs)]
            else:
                keep = (torch.rand(hs[0].shape[0], 1, device=hs[0].device) >= p).to(hs[0].dtype)
                hs = [h * keep if j < f else h for j, h in enumerate(hs)]
        return net.head_logits(hs)

    net.forward = forward


def aux_stage(net: GroupedAlexNet, k: int, x, y, cfg: TrainConfig, targets: dict | None, weight: float = 1.0) -> list[dict]:
    """Stage k as `fit_stage` trains it (seed 0), plus a training-only head on group k's last
    features alone whose cross-entropy is added with `weight` (deep supervision): group k must
    be a classifier of its own, not only a correction of the frozen groups' logits."""
    torch.manual_seed(1)
    aux = torch.nn.Linear(net.heads[0].in_features, net.cfg.num_classes)
    objective = distillation_loss if cfg.distill > 0 else cross_entropy_loss

    def loss_fn(model, xb, yb, cfg, soft):
        hs = model.forward_features(xb)
        logits = model.head_logits(hs)
        main, _ = objective(lambda _: logits, xb, yb, cfg, soft)
        own = F.cross_entropy(aux(hs[-1]), yb, label_smoothing=cfg.label_smoothing)
        return main + weight * own, logits

    return fit_stage(net, k, x, y, cfg, 0, None, targets=targets, loss_fn=loss_fn, extra_params=aux.parameters())


def per_config_model(path: Path) -> GroupedAlexNet:
    """A run's stage checkpoint of the design this study is about (nested groups, one head per
    configuration: reference/main before 34d304f); other designs are refused by name."""
    tech, _ = load_technique(path, torch.device("cpu"))
    net = tech.nets[0]
    if (net.cfg.connectivity, net.cfg.head) != ("nested", "per_config"):
        raise SystemExit(
            f"{path}: model {net.cfg.connectivity} + {net.cfg.head}; this study takes a nested + per_config run "
            "(benchmarks/group_designs.py compares designs)"
        )
    return net


def stage2(run: Path, cfg: TrainConfig, variant: str) -> dict:
    net = per_config_model(run / "models/dynamic/seed0/stage1.pt")
    parts = variant.split("+")  # variants combine: grouped+groupdrop
    net = regrouped(net, GROUPED) if GROUPED in parts else net
    change = {k: v for part in parts for k, v in RECIPES.get(part, {}).items()}
    cfg = replace(cfg, lr=cfg.lr * change.pop("lr_scale", 1.0), **change)
    x, y = load_split(run / "data/train.pt")
    teacher = torch.load(run / "models/dynamic/seed0/teacher_targets.pt", weights_only=False)
    t0 = time.perf_counter()
    if SHORT_STAGE1 in parts:  # group 1 trained again, for half the run's epochs (same views and teacher)
        torch.manual_seed(0)
        net = GroupedAlexNet(net.cfg)
        fit_stage(net, 1, x, y, replace(cfg, epochs=cfg.epochs // 2), 0, None, targets=teacher)
    for part in parts:
        if part in HEAD_DROPOUT:
            head_dropout(net, *HEAD_DROPOUT[part])
    xt, yt = load_split(run / "data/test.pt")
    targets = teacher if cfg.distill > 0 else None
    history = aux_stage(net, 2, x, y, cfg, targets) if AUX in parts else fit_stage(net, 2, x, y, cfg, 0, None, targets=targets)
    net.__dict__.pop("forward", None)
    top1 = {}
    for k in (1, 2):
        net.set_active_groups(k)
        top1[f"g{k}"] = round((predict(net, xt).argmax(1) == yt).float().mean().item(), 4)
    return {"variant": variant, **top1, "train_acc": history[-1]["train_acc"], "s": round(time.perf_counter() - t0)}


@torch.no_grad()
def features(run: Path, k: int) -> dict:
    net = per_config_model(run / f"models/dynamic/seed0/stage{k}.pt").eval()
    net.set_active_groups(k)
    xt, yt = load_split(run / "data/test.pt")
    parts = [net.forward_features(normalize(xt[i : i + 1000])) for i in range(0, len(yt), 1000)]
    hs = [torch.cat([p[j] for p in parts]) for j in range(k)]

    def top1(keep):
        logits = net.heads[k - 1](torch.cat([h if on else torch.zeros_like(h) for h, on in zip(hs, keep)], 1))
        return round((logits.argmax(1) == yt).float().mean().item(), 4)

    return {
        "stage": k,
        "all": top1([True] * k),
        "without_newest": top1([True] * (k - 1) + [False]),
        "newest_alone": top1([False] * (k - 1) + [True]),
        "feature_norms": [round(h.norm(dim=1).mean().item(), 2) for h in hs],
    }


@torch.no_grad()
def ensembles(run: Path) -> list[dict]:
    """What independent 25 % networks give together: top-1 of every combination of the run's
    25 % models (the dynamic DNN's group 1, the static, slimmable and pruned 25 % models), their
    log-probabilities averaged. A bound for a `grouped` design whose groups were trained apart."""
    models = {
        "dynamic": run / "models/dynamic/seed0/stage1.pt",
        "static": run / "models/static/seed0/final.pt",
        "slimmable": run / "models/slimmable/seed0/final.pt",
        "pruned": run / "models/pruned/seed0/final.pt",
    }
    xt, yt = load_split(run / "data/test.pt")
    logp = {
        name: predict(load_technique(path, torch.device("cpu"))[0].module(1), xt).clamp_min(1e-12).log() for name, path in models.items()
    }
    return [
        {"ensemble": "+".join(names), "members": r, "top1": round((sum(logp[n] for n in names).argmax(1) == yt).float().mean().item(), 4)}
        for r in range(1, len(models) + 1)
        for names in itertools.combinations(models, r)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path, help="a finished run's results folder")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["base"],
        help=f"each one of {list(PARTS)} or several joined by +",
    )
    ap.add_argument("--features", action="store_true", help="only read the run's stage checkpoints")
    ap.add_argument("--ensembles", action="store_true", help="only combine the run's 25 %% models (no training)")
    ap.add_argument("--out", type=Path, default=Path("later_groups.jsonl"))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    if bad := [v for v in args.variants if not set(v.split("+")) <= set(PARTS)]:
        ap.error(f"unknown variant(s) {bad}: each part must be one of {list(PARTS)}")
    if mixed := [v for v in args.variants if AUX in v.split("+") and set(v.split("+")) & set(HEAD_DROPOUT)]:
        ap.error(f"{mixed}: {AUX} computes the logits itself, so it cannot take a head dropout")
    torch.set_num_threads(args.threads)
    config = read_yaml(args.config)
    cfg = from_block(TrainConfig, config["train"]).for_stage(2)
    groups = config["model"]["groups"]
    if args.features:
        rows = [features(args.run, k) for k in range(2, groups + 1)]
    else:
        rows = ensembles(args.run) if args.ensembles else (stage2(args.run, cfg, v) for v in args.variants)
    for row in rows:
        print(json.dumps(row), flush=True)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
