"""Anytime inference: upgrading k -> k+1 equals a fresh (k+1)-group forward pass."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import TINY

from dyndnn.learn.anytime import IncrementalRunner
from dyndnn.learn.model import GroupedAlexNet, ModelConfig


@pytest.mark.parametrize(
    "connectivity,head,batch", list(itertools.product(["nested", "grouped"], ["sum", "per_config", "ensemble"], [1, 64]))
)
def test_upgrade_equals_fresh_forward(connectivity, head, batch):
    torch.manual_seed(0)
    model = GroupedAlexNet(ModelConfig(connectivity=connectivity, head=head, **TINY)).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for bn in (b for layer in model.bns for b in layer):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(batch, 3, 32, 32)
    runner = IncrementalRunner(model)
    logits = runner.start(x, 1)
    for k in range(1, model.groups + 1):
        if k > 1:
            logits = runner.upgrade()
        with model.at_groups(k), torch.no_grad():
            fresh = model(x)
        assert runner.groups == k
        torch.testing.assert_close(logits, fresh, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="already at all"):
        runner.upgrade()


def test_start_at_k_and_restart():
    torch.manual_seed(0)
    model = GroupedAlexNet(ModelConfig(**TINY)).eval()
    runner = IncrementalRunner(model)
    x1, x2 = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    runner.start(x1, 3)
    out = runner.start(x2, 2)  # a new input forgets the old one's activations
    with model.at_groups(2), torch.no_grad():
        torch.testing.assert_close(out, model(x2), rtol=0, atol=1e-5)
