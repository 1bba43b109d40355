"""The "existing works" the paper compares against, in the same AlexNet family.

Scope: the networks and training of four baselines, each exposing the same
configurations k = 1..G (25/50/75/100 % width) as the dynamic DNN:

* ``static``: G independently trained dense models (model switching: all stored);
* ``slimmable``: one shared-weight network trained jointly at every width with a
  private BatchNorm per width (Yu et al., ICLR 2019: sum of the width losses);
* ``truncated``: the 100 % static model with channels cut at runtime, no retraining;
* ``pruned``: L1-norm filter pruning of the 100 % static model to each width,
  each fine-tuned (recovery needs every pruned model stored).

`Technique` is the one interface evaluation and export use for every technique,
the dynamic DNN included: `module(k)` (what runs at k), `materialize(k)` (a plain
static module), and the bytes that must be resident to serve every configuration.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from dyndnn.config import TrainConfig
from dyndnn.model import POOL_AFTER, ModelConfig, StaticAlexNet, Switchable

__all__ = ["SlimmableAlexNet", "Technique", "width_config", "l1_prune", "train_baseline", "load_technique", "BASELINES"]

log = logging.getLogger(__name__)
BASELINES = ("static", "slimmable", "truncated", "pruned")
BYTES_PER_VALUE = 4


def width_config(cfg: ModelConfig, k: int) -> ModelConfig:
    """The dense architecture with the widths of the k-group configuration."""
    G = cfg.groups
    return replace(cfg, groups=1, conv_channels=tuple(c * k // G for c in cfg.conv_channels), fc_features=tuple(f * k // G for f in cfg.fc_features), head="sum")


class SlimmableAlexNet(Switchable, nn.Module):
    """A dense AlexNet sized at full width, run at the first k/G of every layer's channels.

    With ``switchable_bn`` every width has its own BatchNorm (slimmable networks);
    without, the full-width BN statistics are sliced (a truncated ordinary model).
    With cfg.groups == 1 it is a plain dense AlexNet (one width).
    """

    def __init__(self, cfg: ModelConfig, switchable_bn: bool = False):
        super().__init__()
        self.cfg, self.switchable_bn = cfg, switchable_bn
        G = cfg.groups
        chans = [3, *cfg.conv_channels]
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False) for i in range(5))
        n_bn = G if switchable_bn else 1
        self.bns = nn.ModuleList(nn.ModuleList(nn.BatchNorm2d(c * (k + 1) // G if switchable_bn else c) for k in range(n_bn)) for c in cfg.conv_channels)
        feats = [cfg.conv_channels[-1] * cfg.feature_size**2, *cfg.fc_features]
        self.fcs = nn.ModuleList(nn.Linear(feats[i], feats[i + 1]) for i in range(len(cfg.fc_features)))
        self.head = nn.Linear(cfg.fc_features[-1], cfg.num_classes)
        self.active_groups = G

    def _width(self, full: int, k: int) -> int:
        return full * k // self.groups

    def _bn(self, layer: int, h: torch.Tensor, k: int) -> torch.Tensor:
        if self.switchable_bn:
            return self.bns[layer][k - 1](h)
        bn, c = self.bns[layer][0], h.shape[1]  # slice the shared statistics (views: updates land in place)
        return F.batch_norm(h, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c], self.training, bn.momentum, bn.eps)

    def conv_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every conv block at the active width, (B, C_k, H, W) each."""
        k = self.active_groups
        h, c_in, outs = x, 3, []
        for layer, conv in enumerate(self.convs):
            c_out = self._width(conv.out_channels, k)
            h = F.relu(self._bn(layer, F.conv2d(h, conv.weight[:c_out, :c_in], padding=1), k))
            if layer in POOL_AFTER:
                h = F.max_pool2d(h, 2)
            outs.append(h)
            c_in = c_out
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.active_groups
        h = self.conv_features(x)[-1].flatten(1)  # channel-major: the first channels' features come first
        f_in = h.shape[1]
        for fc in self.fcs:
            f_out = self._width(fc.out_features, k)
            h = F.dropout(F.relu(F.linear(h, fc.weight[:f_out, :f_in], fc.bias[:f_out])), self.cfg.dropout, self.training)
            f_in = f_out
        return F.linear(h, self.head.weight[:, :f_in], self.head.bias)

    @torch.no_grad()
    def materialize(self, k: int | None = None) -> StaticAlexNet:
        k = self.active_groups if k is None else k
        features, c_in = [], 3
        for layer, conv in enumerate(self.convs):
            c_out = self._width(conv.out_channels, k)
            static = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            static.weight.copy_(conv.weight[:c_out, :c_in])
            src = self.bns[layer][k - 1 if self.switchable_bn else 0]
            bn = nn.BatchNorm2d(c_out, eps=src.eps)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(getattr(src, name)[:c_out])
            features += [static, bn, nn.ReLU(inplace=True)] + ([nn.MaxPool2d(2)] if layer in POOL_AFTER else [])
            c_in = c_out
        classifier, f_in = [], c_in * self.cfg.feature_size**2
        for fc in self.fcs:
            f_out = self._width(fc.out_features, k)
            lin = nn.Linear(f_in, f_out)
            lin.weight.copy_(fc.weight[:f_out, :f_in])
            lin.bias.copy_(fc.bias[:f_out])
            classifier += [lin, nn.ReLU(inplace=True), nn.Dropout(self.cfg.dropout)]
            f_in = f_out
        head = nn.Linear(f_in, self.cfg.num_classes)
        head.weight.copy_(self.head.weight[:, :f_in])
        head.bias.copy_(self.head.bias)
        return StaticAlexNet(nn.Sequential(*features), nn.Sequential(*(classifier + [head]))).eval()


def _state_bytes(module: nn.Module) -> int:
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
        if self.kind in ("static", "pruned"):
            return self.nets[k - 1].eval()
        net = self.nets[0].eval()
        net.set_active_groups(k)
        return net

    def materialize(self, k: int, layout: str = "split") -> nn.Module:
        """A plain static module of configuration k; `layout` applies to the dynamic
        DNN's nested layers only (the others are dense or grouped by construction)."""
        if self.kind in ("static", "pruned"):
            return self.nets[k - 1].materialize(1)
        if self.kind == "dynamic":
            return self.nets[0].materialize(k, layout)
        return self.nets[0].materialize(k)

    def layout(self, layout: str = "split") -> str:
        """How configuration k's layers execute once materialised with `layout`."""
        if self.kind != "dynamic":
            return "dense"
        return "grouped" if self.cfg.connectivity == "grouped" else layout

    def resident_bytes(self) -> int:
        """Bytes to keep to serve every configuration: every stored model and BN set."""
        return sum(_state_bytes(n) for n in self.nets)


@torch.no_grad()
def l1_prune(full: SlimmableAlexNet, k: int, groups: int) -> SlimmableAlexNet:
    """Keep, in every layer, the k/groups filters (neurons) with the largest L1 norm of
    their weights (Li et al. 2017), and the matching input columns of the next layer."""
    cfg = width_config(replace(full.cfg, groups=groups), k)
    pruned = SlimmableAlexNet(cfg)
    keep_in = torch.arange(3)
    for layer, (src, dst) in enumerate(zip(full.convs, pruned.convs)):
        keep = src.weight.abs().sum(dim=(1, 2, 3)).topk(dst.out_channels).indices.sort().values
        dst.weight.copy_(src.weight[keep][:, keep_in])
        s_bn, d_bn = full.bns[layer][0], pruned.bns[layer][0]
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(d_bn, name).copy_(getattr(s_bn, name)[keep])
        keep_in = keep
    area = full.cfg.feature_size**2  # flatten: channel c owns features c*area .. c*area + area - 1
    keep_in = (keep_in[:, None] * area + torch.arange(area)).flatten()
    for src, dst in zip(full.fcs, pruned.fcs):
        keep = src.weight.abs().sum(dim=1).topk(dst.out_features).indices.sort().values
        dst.weight.copy_(src.weight[keep][:, keep_in])
        dst.bias.copy_(src.bias[keep])
        keep_in = keep
    pruned.head.weight.copy_(full.head.weight[:, keep_in])
    pruned.head.bias.copy_(full.head.bias)
    return pruned


def slimmable_loss(model: SlimmableAlexNet, xb, yb, cfg: TrainConfig):
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


def train_baseline(kind: str, cfg: ModelConfig, train_cfg: TrainConfig, x, y, seed: int, static: "Technique | None" = None, finetune_epochs: int = 1, resume_dir=None) -> tuple["Technique", list[dict]]:
    """Train (or derive) one baseline; returns the technique and its training history."""
    from dyndnn.train import fit

    def resume(name):
        return f"{resume_dir}/{name}.pt" if resume_dir else None

    G, history = cfg.groups, []
    device = "cuda" if train_cfg.device != "cpu" and torch.cuda.is_available() else "cpu"
    if kind == "static":
        nets = []
        for k in range(1, G + 1):
            net = _dense(cfg, k, seed + k, device)
            history += fit(net, list(net.parameters()), x, y, train_cfg, seed * 1000 + k, resume(f"static-w{k}"), tag={"width": k})
            nets.append(net)
        return Technique("static", nets, cfg), history
    if kind == "slimmable":
        torch.manual_seed(seed)
        net = SlimmableAlexNet(cfg, switchable_bn=True).to(device)
        history = fit(net, list(net.parameters()), x, y, train_cfg, seed * 1000, resume("slimmable"), tag={"widths": G}, loss_fn=slimmable_loss)
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
            history += fit(net, list(net.parameters()), x, y, replace(train_cfg, epochs=finetune_epochs), seed * 1000 + k, resume(f"pruned-w{k}"), tag={"width": k})
            nets.append(net)
        return Technique("pruned", nets + [full], cfg), history
    raise ValueError(f"unknown baseline {kind!r} (known: {', '.join(BASELINES)})")


def technique_checkpoint(t: Technique, train_cfg: TrainConfig, seed: int, history: list[dict]) -> dict:
    from dataclasses import asdict

    return {
        "kind": t.kind,
        "model_config": t.cfg.to_dict(),
        "net_configs": [n.cfg.to_dict() for n in t.nets],
        "switchable_bn": [getattr(n, "switchable_bn", False) for n in t.nets],
        "train_config": asdict(train_cfg),
        "seed": seed,
        "precision": history[-1].get("precision", "fp32") if history else None,  # truncated: none trained
        "history": history,
        "state_dicts": [n.state_dict() for n in t.nets],
    }


def load_technique(path, device="cpu") -> tuple[Technique, dict]:
    """Any technique's checkpoint, the dynamic DNN's included."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    cfg = ModelConfig(**ckpt["model_config"])
    if ckpt["kind"] == "dynamic":
        from dyndnn.train import model_from_checkpoint

        return Technique("dynamic", [model_from_checkpoint(ckpt, device)], cfg), ckpt
    nets = []
    for net_cfg, switchable, state in zip(ckpt["net_configs"], ckpt["switchable_bn"], ckpt["state_dicts"]):
        net = SlimmableAlexNet(ModelConfig(**net_cfg), switchable_bn=switchable)
        net.load_state_dict(state)
        nets.append(net.eval())
    return Technique(ckpt["kind"], nets, cfg), ckpt


def train_baseline_job(kind: str, data_path: str, model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int, out_ckpt: str, out_history: str,
                       static_ckpt: str | None = None, finetune_epochs: int = 1, resume_dir: str | None = None, threads: int = 1) -> None:  # fmt: skip
    """The train_baseline rule: train or derive `kind`, save its checkpoint and history."""
    import shutil
    from pathlib import Path

    from dyndnn.data import load_split
    from dyndnn.train import resolve_device, save_atomic, write_history

    torch.set_num_threads(train_cfg.threads or threads)
    device = resolve_device(train_cfg.device)
    static = load_technique(static_ckpt, device)[0] if static_ckpt else None
    x, y = load_split(data_path)
    if resume_dir:
        Path(resume_dir).mkdir(parents=True, exist_ok=True)
    technique, history = train_baseline(kind, model_cfg, train_cfg, x, y, seed, static, finetune_epochs, resume_dir)
    for net in technique.nets:
        net.to(device)
    save_atomic(technique_checkpoint(technique, train_cfg, seed, history), out_ckpt)
    write_history(history, out_history) if history else Path(out_history).write_text("note\nno training: derived at runtime\n")
    if resume_dir:
        shutil.rmtree(resume_dir, ignore_errors=True)
