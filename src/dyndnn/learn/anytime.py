"""Anytime (incremental) inference for the nested dynamic DNN.

Scope: `IncrementalRunner` answers an input at k groups, keeps the activations of
groups 1..k of every layer, and upgrades the same input to k+1 groups by computing
only group k+1's share: its own conv/FC outputs (which read the cached groups 1..k)
and its head term (sum head: logits_{k+1} = logits_k + W_{k+1} h_{k+1}; per-config
head: head k+1 over the cached features; ensemble head: the running mean of the groups'
own logits). Valid because, with nested connectivity,
groups 1..k never read group k+1. Grouped connectivity works the same way (group
k+1 reads only itself). Inference only; no training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dyndnn.arch import POOL_AFTER
from dyndnn.learn.model import GroupedAlexNet

__all__ = ["IncrementalRunner"]


class IncrementalRunner:
    """Run a GroupedAlexNet at 1..G groups on one input (batch), reusing earlier work."""

    def __init__(self, model: GroupedAlexNet):
        self.model = model.eval()
        self.x: torch.Tensor | None = None
        self.convs: list[list[torch.Tensor]] = []  # per conv layer: outputs of groups 1..k
        self.fcs: list[list[torch.Tensor]] = []  # per FC layer: outputs of groups 1..k
        self.logits: torch.Tensor | None = None

    @property
    def groups(self) -> int:
        """How many groups the current answer uses (0 before `start`)."""
        return len(self.convs[0]) if self.convs else 0

    @torch.no_grad()
    def start(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        """Answer x (B, 3, 32, 32), normalised, at k groups; returns logits (B, classes)."""
        self.x = x
        self.convs = [[] for _ in self.model.convs]
        self.fcs = [[] for _ in self.model.fcs]
        self.logits = None
        for _ in range(k):
            self.upgrade()
        return self.logits

    @torch.no_grad()
    def upgrade(self) -> torch.Tensor:
        """Add the next group; returns the logits at the new group count."""
        m, j = self.model, self.groups
        if self.x is None:
            raise RuntimeError("call start(x) first")
        if j >= m.groups:
            raise ValueError(f"already at all {m.groups} groups")
        h = self.x
        for layer, (convs, bns) in enumerate(zip(m.convs, m.bns)):
            inp = h if layer == 0 else m._group_inputs(self.convs[layer - 1] + [h], j)
            h = F.relu(bns[j](convs[j](inp)))  # (B, C_g, H, W): group j+1's channels only
            if layer in POOL_AFTER:
                h = F.max_pool2d(h, 2)
            self.convs[layer].append(h)
        flat = [t.flatten(1) for t in self.convs[-1]]
        for layer, fcs in enumerate(m.fcs):
            prev = flat if layer == 0 else self.fcs[layer - 1]
            h = F.relu(fcs[j](m._group_inputs(prev, j)))
            self.fcs[layer].append(h)
        last = self.fcs[-1] if m.fcs else flat
        if m.cfg.head == "sum":
            term = m.heads[j](last[j])
            self.logits = term if self.logits is None else self.logits + term
        elif m.cfg.head == "ensemble":  # running mean of the groups' own logits
            term = m.heads[j](last[j])
            self.logits = term if self.logits is None else self.logits + (term - self.logits) / (j + 1)
        else:
            self.logits = m.heads[j](torch.cat(last, dim=1))
        return self.logits
