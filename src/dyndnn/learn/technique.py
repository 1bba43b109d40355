"""Every trained technique behind one interface, in one checkpoint format.

Scope: `Technique` (what runs at configuration k, a static module of it, the bytes
resident to serve every configuration), the checkpoint every training job writes
(`checkpoint`, `save_atomic`) and the one loader (`load_technique`) export,
evaluation, training (resume, the distillation teacher) and the tools use.

A checkpoint holds the technique's nets, each with the class and architecture to
rebuild it (``grouped``: the dynamic DNN; ``dense``: an AlexNet of the baselines,
with or without a BatchNorm per width), their state dicts, and the recipe, seed,
precision and history that made them (torchvision-style: a checkpoint is
self-describing).
"""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from dyndnn.arch import DYNAMIC, TECHNIQUES, ModelConfig
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.slimmable import SlimmableAlexNet
from dyndnn.provenance import write_atomic

__all__ = ["Technique", "BYTES_PER_VALUE", "checkpoint", "load_technique", "save_atomic", "state_bytes"]

BYTES_PER_VALUE = 4  # fp32 weights and statistics
FORMAT = 2  # checkpoint layout version: nets + state_dicts for every technique


def state_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers (BN statistics; not the batch counters)."""
    return BYTES_PER_VALUE * sum(t.numel() for n, t in module.state_dict().items() if not n.endswith("num_batches_tracked"))


class Technique:
    """One technique's runtime configurations k = 1..G behind one interface."""

    def __init__(self, kind: str, nets: list[nn.Module], cfg: ModelConfig):
        self.kind, self.nets, self.cfg = kind, nets, cfg

    @property
    def groups(self) -> int:
        return self.cfg.groups

    def module(self, k: int) -> nn.Module:
        """What runs at configuration k (switched in place where the technique can)."""
        if TECHNIQUES[self.kind].nets_per_config:
            return self.nets[k - 1].eval()
        net = self.nets[0].eval()
        net.set_active_groups(k)
        return net

    def materialize(self, k: int, layout: str = "split") -> nn.Module:
        """A plain static module of configuration k; `layout` applies to the dynamic
        DNN's nested layers only (the others are dense or grouped by construction)."""
        if TECHNIQUES[self.kind].nets_per_config:
            return self.nets[k - 1].materialize(1)
        if self.kind == DYNAMIC:
            return self.nets[0].materialize(k, layout)
        return self.nets[0].materialize(k)

    def layout(self, layout: str = "split") -> str:
        """How configuration k's layers execute once materialised with `layout`."""
        if self.kind != DYNAMIC:
            return "dense"
        return "grouped" if self.cfg.connectivity == "grouped" else layout

    def resident_bytes(self) -> int:
        """Bytes to keep to serve every configuration: every stored model and BN set."""
        return sum(state_bytes(n) for n in self.nets)


def _net_entry(net: nn.Module) -> dict:
    if isinstance(net, GroupedAlexNet):
        return {"net": "grouped", "config": net.cfg.to_dict()}
    return {"net": "dense", "config": net.cfg.to_dict(), "switchable_bn": net.switchable_bn}


def _build_net(entry: dict) -> nn.Module:
    cfg = ModelConfig(**entry["config"])
    if entry["net"] == "grouped":
        return GroupedAlexNet(cfg)
    return SlimmableAlexNet(cfg, switchable_bn=entry["switchable_bn"])


def checkpoint(t: Technique, train_cfg, seed: int, history: list[dict], stage: int | None = None) -> dict:
    """The one checkpoint format (see the module docstring); `stage`: the dynamic DNN's
    last trained stage."""
    return {
        "format": FORMAT,
        "kind": t.kind,
        "stage": stage,
        "model_config": t.cfg.to_dict(),
        "nets": [_net_entry(n) for n in t.nets],
        "state_dicts": [n.state_dict() for n in t.nets],
        "train_config": asdict(train_cfg),
        "seed": seed,
        "precision": history[-1].get("precision", "fp32") if history else None,  # what the last epoch ran in; truncated: none trained
        "history": history,
    }


def load_technique(path: str | Path, device: str | torch.device = "cpu") -> tuple[Technique, dict]:
    """Any technique's checkpoint as a Technique (nets in eval mode on `device`) and the raw dict."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    if ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{path}: checkpoint format {ckpt.get('format', 1)}, this dyndnn reads format {FORMAT}: retrain (delete it and rerun)"
        )
    nets = []
    for entry, state in zip(ckpt["nets"], ckpt["state_dicts"]):
        net = _build_net(entry).to(device)
        net.load_state_dict(state)
        nets.append(net.eval())
    return Technique(ckpt["kind"], nets, ModelConfig(**ckpt["model_config"])), ckpt


def save_atomic(obj, path: str | Path) -> None:
    """torch.save to a temporary sibling, then rename: a reader never sees half a file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())
