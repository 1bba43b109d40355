"""The slimmable network (Yu et al. 2019: shared weights, one BN per width) and L1 filter
pruning of it: the baselines that switch widths of one network rather than adding groups."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from dyndnn.arch import POOL_AFTER, ModelConfig
from dyndnn.learn.model import StaticAlexNet, Switchable

__all__ = ["width_config", "SlimmableAlexNet", "l1_prune"]


def width_config(cfg: ModelConfig, k: int) -> ModelConfig:
    """The dense architecture with the widths of the k-group configuration."""
    G = cfg.groups
    return replace(
        cfg,
        groups=1,
        conv_channels=tuple(c * k // G for c in cfg.conv_channels),
        fc_features=tuple(f * k // G for f in cfg.fc_features),
        head="sum",
    )


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
        self.bns = nn.ModuleList(
            nn.ModuleList(nn.BatchNorm2d(c * (k + 1) // G if switchable_bn else c) for k in range(n_bn)) for c in cfg.conv_channels
        )
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
