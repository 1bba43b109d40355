"""The dynamic DNN: an AlexNet for CIFAR-10 whose channels are split into groups.

Scope: the grouped network, runtime switching of the active group count, the
freezing of earlier groups for incremental training, and `materialize(k)`, which
copies the k-group sub-network into a plain static module (what is exported and
timed). Training loops, data and metrics live elsewhere.

Every layer keeps one parameter tensor *per output group*, so group j's
parameters are physically separate from group i's. This makes the method's
invariants structural rather than a matter of gradient masks:

* output group j of a layer reads input groups 1..j (``nested``, a
  block-lower-triangular weight) or input group j only (``grouped``, a
  block-diagonal weight, i.e. a true grouped convolution);
* so groups 1..k never depend on groups k+1..G, and the k-group output is
  untouched by any change to later groups;
* a training stage hands only group-k tensors to the optimiser, and computes
  frozen groups under ``torch.no_grad()`` in eval mode (BN statistics frozen).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from dyndnn.arch import CONNECTIVITIES, HEADS, LAYOUTS, POOL_AFTER, ModelConfig, arch_config

__all__ = [
    "ModelConfig",
    "GroupedAlexNet",
    "Switchable",
    "arch_config",
    "StaticAlexNet",
    "GroupedLinear",
    "NestedLayer",
    "CONNECTIVITIES",
    "HEADS",
    "LAYOUTS",
]


def _reads(connectivity: str, j: int) -> slice:
    """Which input groups output group j reads (0-based slice of group indices)."""
    return slice(0, j + 1) if connectivity == "nested" else slice(j, j + 1)


class Switchable:
    """Runtime switching of the active configuration k = 1..G (G = cfg.groups)."""

    cfg: ModelConfig
    active_groups: int

    @property
    def groups(self) -> int:
        return self.cfg.groups

    def set_active_groups(self, k: int) -> None:
        """Run with groups (or width steps) 1..k only (k in 1..G)."""
        if not 1 <= k <= self.groups:
            raise ValueError(f"active groups must be in 1..{self.groups}, got {k}")
        self.active_groups = k

    @contextmanager
    def at_groups(self, k: int):
        """Temporarily switch to k groups; restores the previous setting."""
        previous = self.active_groups
        self.set_active_groups(k)
        try:
            yield self
        finally:
            self.active_groups = previous


class GroupedAlexNet(Switchable, nn.Module):
    """AlexNet for CIFAR-10 with G channel groups in every conv and FC layer.

    Layers: five 3x3 convs (BN + ReLU; max-pool after 1, 2, 5), then FC layers
    (ReLU + dropout), then a 10-way head. Every width is split into G equal groups.
    """

    def __init__(self, cfg: ModelConfig | None = None, **kwargs):
        super().__init__()
        self.cfg = cfg = cfg or ModelConfig(**kwargs)
        G = cfg.groups
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        in_per_group = None  # layer 0 reads the 3 image channels in every group
        for width in cfg.conv_channels:
            out_g = width // G
            self.convs.append(
                nn.ModuleList(
                    nn.Conv2d(3 if in_per_group is None else self._in_width(j, in_per_group), out_g, 3, padding=1, bias=False)
                    for j in range(G)
                )
            )
            self.bns.append(nn.ModuleList(nn.BatchNorm2d(out_g) for _ in range(G)))
            in_per_group = out_g
        in_per_group *= cfg.feature_size**2  # flattened features per group
        self.fcs = nn.ModuleList()
        for width in cfg.fc_features:
            out_g = width // G
            self.fcs.append(nn.ModuleList(nn.Linear(self._in_width(j, in_per_group), out_g) for j in range(G)))
            in_per_group = out_g
        if cfg.head == "sum":  # the bias belongs to group 1, so logits_1 is a complete classifier
            self.heads = nn.ModuleList(nn.Linear(in_per_group, cfg.num_classes, bias=j == 0) for j in range(G))
        elif cfg.head == "ensemble":  # every group a complete classifier of its own features
            self.heads = nn.ModuleList(nn.Linear(in_per_group, cfg.num_classes) for _ in range(G))
        else:
            self.heads = nn.ModuleList(nn.Linear((j + 1) * in_per_group, cfg.num_classes) for j in range(G))
        self.active_groups = G
        self.frozen_groups = 0

    def _in_width(self, j: int, in_per_group: int) -> int:
        r = _reads(self.cfg.connectivity, j)
        return (r.stop - r.start) * in_per_group

    # -- incremental training ---------------------------------------------
    def group_modules(self, j: int) -> list[nn.Module]:
        """Every module that belongs to group j (0-based): its parameters and BN statistics."""
        return [layer[j] for layer in (*self.convs, *self.bns, *self.fcs)] + [self.heads[j]]

    def group_parameters(self, j: int) -> list[nn.Parameter]:
        return [p for m in self.group_modules(j) for p in m.parameters()]

    def prepare_stage(self, k: int) -> list[nn.Parameter]:
        """Set up training stage k (1-based): groups < k frozen, group k trainable.

        Returns the parameters the optimiser may touch (group k's only). Call
        `model.train()` before this; it puts frozen groups back into eval mode.
        """
        self.set_active_groups(k)
        self.frozen_groups = k - 1
        for j in range(self.groups):
            for m in self.group_modules(j):
                m.requires_grad_(j == k - 1)
                if j < k - 1:
                    m.eval()
        return self.group_parameters(k - 1)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:  # frozen groups never leave eval mode: their BN statistics stay fixed
            for j in range(self.frozen_groups):
                for m in self.group_modules(j):
                    m.eval()
        return self

    # -- forward ------------------------------------------------------------
    def _group_inputs(self, xs: list[torch.Tensor], j: int) -> torch.Tensor:
        r = _reads(self.cfg.connectivity, j)
        parts = xs[r]
        p = self.cfg.frozen_dropout
        if p and self.training and j >= self.frozen_groups:  # the group being trained reads frozen features
            parts = [F.dropout(h, p, training=True) if r.start + i < self.frozen_groups else h for i, h in enumerate(parts)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward_features(self, x: torch.Tensor, first: int = 0) -> list[torch.Tensor]:
        """Per-group last hidden features, each (B, fc_features[-1] / G), of groups
        first..k-1 (0-based; k = the active configuration). Only `grouped` connectivity may
        skip groups (`first` > 0): there a group reads no other group's features."""
        k = self.active_groups
        if first and self.cfg.connectivity != "grouped":
            raise ValueError(f"{self.cfg.connectivity} groups read the groups before them: compute from group 0")
        xs: list[torch.Tensor] | None = None
        for layer, (convs, bns) in enumerate(zip(self.convs, self.bns)):
            outs: list = [None] * first  # skipped groups (grouped: never read)
            for j in range(first, k):
                with torch.no_grad() if j < self.frozen_groups else nullcontext():
                    h = x if xs is None else self._group_inputs(xs, j)  # (B, C_in_j, H, W)
                    h = F.relu(bns[j](convs[j](h)))
                    if layer in POOL_AFTER:
                        h = F.max_pool2d(h, 2)
                outs.append(h)
            xs = outs
        xs = [None if h is None else h.flatten(1) for h in xs]  # (B, C_g * 4 * 4): channel-major, so groups stay contiguous
        for fcs in self.fcs:
            outs = [None] * first
            for j in range(first, k):
                with torch.no_grad() if j < self.frozen_groups else nullcontext():
                    h = F.relu(fcs[j](self._group_inputs(xs, j)))
                    h = F.dropout(h, self.cfg.dropout, training=fcs[j].training)
                outs.append(h)
            xs = outs
        return xs[first:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 32, 32) -> (B, num_classes) logits of the active configuration."""
        return self.head_logits(self.forward_features(x))

    def head_logits(self, hs: list[torch.Tensor]) -> torch.Tensor:
        """The configuration's logits from its groups' features `hs` (`forward_features`):
        per_config, its head over their concatenation; sum, the sum of every group's head on
        its own features; ensemble, their mean."""
        if self.cfg.head == "per_config":
            return self.heads[len(hs) - 1](torch.cat(hs, dim=1))
        total = sum(head(h) for head, h in zip(self.heads, hs))
        return total / len(hs) if self.cfg.head == "ensemble" else total

    def stage_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits a training stage learns from at the active configuration k: the
        configuration's own (`forward`), except for the `ensemble` head, where stage k trains
        group k's classifier alone (head k on group k's features), not the average it joins.
        With `grouped` connectivity group k reads no frozen group, so only group k is computed
        (the same ops on the same inputs: the logits are bit-identical, at 1/k of the work)."""
        if self.cfg.head != "ensemble":
            return self(x)
        k = self.active_groups
        first = k - 1 if self.cfg.connectivity == "grouped" else 0
        return self.heads[k - 1](self.forward_features(x, first)[-1])

    # -- static sub-networks ----------------------------------------------------
    def materialize(self, k: int | None = None, layout: str = "split") -> "StaticAlexNet":
        """A plain static module computing the k-group network, weights physically sliced.

        nested, layout split: every layer after the first is one op per output group
        over the input prefix it reads, concatenated (`NestedLayer`); layout dense: one
        dense op with the block-lower-triangular weight assembled (zeros above the
        diagonal). grouped: real grouped convolutions (`groups=k`) after the first layer,
        whatever the layout.
        """
        k = self.active_groups if k is None else k
        return StaticAlexNet.from_grouped(self, k, layout)

    def arch_config(self, k: int) -> dict:
        return arch_config(self.cfg, k)


class GroupedLinear(nn.Module):
    """A block-diagonal linear layer computed as a grouped 1x1 convolution.

    ONNX has no grouped Gemm; a grouped Conv keeps the exported graph free of
    the zero blocks.
    """

    def __init__(self, in_features: int, out_features: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(in_features, out_features, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F_in) -> (B, F_out)
        return self.conv(x.unsqueeze(-1)).squeeze(-1)


class NestedLayer(nn.Module):
    """One nested layer of a k-group network executing only its connections.

    Output group j is `ops[j]` applied to the first `reads[j]` input channels (the
    groups 1..j it reads); the outputs are concatenated along channels. In ONNX: a
    Slice per group that reads a strict prefix, a Conv (BN fused by the runtime) or
    Gemm per group, one Concat.
    """

    def __init__(self, ops: list[nn.Module], reads: list[int], in_total: int):
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.reads = list(reads)
        self.in_total = in_total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [op(x if r == self.in_total else x[:, :r]) for op, r in zip(self.ops, self.reads)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


class StaticAlexNet(nn.Module):
    """The materialised k-group network: ordinary layers, no switching logic."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))

    @classmethod
    @torch.no_grad()
    def from_grouped(cls, net: GroupedAlexNet, k: int, layout: str = "split") -> "StaticAlexNet":
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        cfg = net.cfg
        grouped = cfg.connectivity == "grouped"
        split = layout == "split" and not grouped
        features: list[nn.Module] = []
        for layer, (convs, bns) in enumerate(zip(net.convs, net.bns)):
            if split and layer > 0:  # layer 0: every group reads the image, a dense conv has no zeros
                ops = [nn.Sequential(_copy_conv(c), _concat_bn(bns[j : j + 1])) for j, c in enumerate(convs[:k])]
                features += [NestedLayer(ops, [c.in_channels for c in convs[:k]], convs[k - 1].in_channels), nn.ReLU(inplace=True)]
            else:
                if grouped and layer > 0:
                    conv = nn.Conv2d(
                        sum(c.in_channels for c in convs[:k]), sum(c.out_channels for c in convs[:k]), 3, padding=1, bias=False, groups=k
                    )
                    conv.weight.copy_(torch.cat([c.weight for c in convs[:k]]))
                else:
                    conv = _dense_from_blocks(nn.Conv2d, [c.weight for c in convs[:k]], padding=1, bias=False)
                features += [conv, _concat_bn(bns[:k]), nn.ReLU(inplace=True)]
            if layer in POOL_AFTER:
                features.append(nn.MaxPool2d(2))
        classifier: list[nn.Module] = []
        for fcs in net.fcs:
            if grouped:
                fc = GroupedLinear(sum(f.in_features for f in fcs[:k]), sum(f.out_features for f in fcs[:k]), k)
                fc.conv.weight.copy_(torch.cat([f.weight for f in fcs[:k]]).unsqueeze(-1))
                fc.conv.bias.copy_(torch.cat([f.bias for f in fcs[:k]]))
            elif split:
                fc = NestedLayer([_copy_linear(f) for f in fcs[:k]], [f.in_features for f in fcs[:k]], fcs[k - 1].in_features)
            else:
                fc = _dense_from_blocks(nn.Linear, [f.weight for f in fcs[:k]], bias=True)
                fc.bias.copy_(torch.cat([f.bias for f in fcs[:k]]))
            classifier += [fc, nn.ReLU(inplace=True), nn.Dropout(cfg.dropout)]
        if cfg.head in ("sum", "ensemble"):  # one linear head over [h_1..h_k]: the sum (or mean) of the slices
            scale = 1 / k if cfg.head == "ensemble" else 1
            head = nn.Linear(sum(h.in_features for h in net.heads[:k]), cfg.num_classes)
            head.weight.copy_(torch.cat([h.weight for h in net.heads[:k]], dim=1) * scale)
            head.bias.copy_(sum(h.bias for h in net.heads[:k] if h.bias is not None) * scale)
        else:
            head = _copy_linear(net.heads[k - 1])
        classifier.append(head)
        return cls(nn.Sequential(*features), nn.Sequential(*classifier)).eval()


def _copy_conv(src: nn.Conv2d) -> nn.Conv2d:
    conv = nn.Conv2d(src.in_channels, src.out_channels, src.kernel_size, padding=src.padding, bias=src.bias is not None)
    conv.load_state_dict(src.state_dict())
    return conv


def _copy_linear(src: nn.Linear) -> nn.Linear:
    lin = nn.Linear(src.in_features, src.out_features, bias=src.bias is not None)
    lin.load_state_dict(src.state_dict())
    return lin


def _concat_bn(bns) -> nn.BatchNorm2d:
    """One BatchNorm over the concatenated channels of `bns` (eval statistics copied)."""
    bn = nn.BatchNorm2d(sum(b.num_features for b in bns), eps=bns[0].eps)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, name).copy_(torch.cat([getattr(b, name) for b in bns]))
    return bn


def _dense_from_blocks(layer_cls, blocks: list[torch.Tensor], **kwargs) -> nn.Module:
    """Stack per-output-group weights into one dense layer, zero-padding input columns.

    Block j has shape (out_j, in_j, ...) with in_j <= in_total; its columns are the
    first in_j inputs (nested reads groups 1..j), the rest stay zero.
    """
    out_total = sum(b.shape[0] for b in blocks)
    in_total = max(b.shape[1] for b in blocks)
    spatial = tuple(blocks[0].shape[2:])
    if layer_cls is nn.Conv2d:
        layer = nn.Conv2d(in_total, out_total, spatial[0], **kwargs)
    else:
        layer = nn.Linear(in_total, out_total, **kwargs)
    layer.weight.zero_()
    row = 0
    for b in blocks:
        layer.weight[row : row + b.shape[0], : b.shape[1]].copy_(b)
        row += b.shape[0]
    return layer


# Dense networks of the baselines (same AlexNet family, same configurations k = 1..G).
