"""The existing-work baselines: switchable BN, truncation, L1 pruning, memory accounting, export."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import TINY

from dyndnn.config import TrainConfig
from dyndnn.learn.baselines import train_baseline
from dyndnn.learn.export import onnx_parity, to_onnx_bytes, to_torchscript, torchscript_parity
from dyndnn.learn.model import GroupedAlexNet, ModelConfig
from dyndnn.learn.slimmable import SlimmableAlexNet, l1_prune, width_config
from dyndnn.learn.technique import Technique

SMALL = ModelConfig(groups=2, connectivity="nested", conv_channels=(4, 4, 4, 4, 4), fc_features=(4,), head="sum")  # the hand counts below
CFG4 = ModelConfig(groups=4, **TINY)


def test_switchable_bn_uses_each_widths_own_statistics():
    torch.manual_seed(0)
    net = SlimmableAlexNet(CFG4, switchable_bn=True).train()
    before = [bn.running_mean.clone() for bn in net.bns[2]]
    net.set_active_groups(2)
    net(torch.randn(8, 3, 32, 32))
    after = [bn.running_mean for bn in net.bns[2]]
    assert [not torch.equal(a, b) for a, b in zip(before, after)] == [False, True, False, False]
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    net.set_active_groups(3)
    out3 = net(x)
    with torch.no_grad():
        net.bns[2][1].running_mean.add_(5.0)  # width 2's statistics: width 3 must not see them
    assert torch.equal(out3, net(x))
    net.set_active_groups(2)
    with torch.no_grad():
        net.bns[2][1].running_mean.sub_(5.0)
        ref = net(x)
        net.bns[2][1].running_mean.add_(5.0)
    assert not torch.allclose(ref, net(x))


def test_truncation_is_inexact_while_dynamic_subnetworks_are_exact():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    static = SlimmableAlexNet(CFG4).eval()
    full = static.conv_features(x)
    static.set_active_groups(2)
    cut = static.conv_features(x)
    assert torch.equal(cut[0], full[0][:, : cut[0].shape[1]])  # layer 1 reads only the image
    assert not torch.allclose(cut[2], full[2][:, : cut[2].shape[1]]), "later layers lose the dropped channels' inputs"
    dyn = GroupedAlexNet(CFG4).eval()
    with torch.no_grad():
        with dyn.at_groups(2):
            small = dyn.forward_features(x)
        big = dyn.forward_features(x)
    for a, b in zip(small, big[:2]):  # the k-group features are the first k groups of the full model's
        assert torch.equal(a, b)


def test_memory_accounting_matches_hand_counts():
    """SMALL: conv 4-4-4-4-4, FC 4, head 10, G = 2; 4 bytes per value (BN statistics included)."""
    torch.manual_seed(0)
    full = SlimmableAlexNet(width_config(SMALL, 2))
    half = SlimmableAlexNet(width_config(SMALL, 1))
    # full: conv 3*4*9 + 4*(4*4*9) = 684; BN 5 layers * 4 ch * 4 = 80; FC 64*4+4 = 260; head 4*10+10 = 50
    assert Technique("truncated", [SlimmableAlexNet(SMALL)], SMALL).resident_bytes() == 4 * 1074
    # half: conv 3*2*9 + 4*(2*2*9) = 198; BN 40; FC 32*2+2 = 66; head 2*10+10 = 30
    assert Technique("static", [half, full], SMALL).resident_bytes() == 4 * (334 + 1074)
    # slimmable: full weights 684 + 260 + 50 and two BN sets: 40 + 80
    assert Technique("slimmable", [SlimmableAlexNet(SMALL, switchable_bn=True)], SMALL).resident_bytes() == 4 * 1114
    # dynamic nested: conv 2*54 + 4*(36 + 72) = 540; BN 80; FC (32*2+2) + (64*2+2) = 196; heads 30 + 20
    assert Technique("dynamic", [GroupedAlexNet(SMALL)], SMALL).resident_bytes() == 4 * 866
    # dynamic grouped, ensemble head (the main job's design): conv 2*54 + 4*2*36 = 396; BN 80; FC 2*(32*2+2) = 132;
    # heads 2*(2*10+10) = 60: every group keeps its own classifier
    ensemble = replace(SMALL, connectivity="grouped", head="ensemble")
    assert Technique("dynamic", [GroupedAlexNet(ensemble)], ensemble).resident_bytes() == 4 * 668


@pytest.mark.parametrize("kind", ["static", "slimmable", "truncated", "pruned", "dynamic"])
def test_every_technique_exports_with_onnx_parity(kind):
    torch.manual_seed(0)
    G = CFG4.groups
    if kind == "static":
        t = Technique(kind, [SlimmableAlexNet(width_config(CFG4, k)) for k in range(1, G + 1)], CFG4)
    elif kind == "pruned":
        full = SlimmableAlexNet(width_config(CFG4, G))
        t = Technique(kind, [l1_prune(full, k, G) for k in range(1, G)] + [full], CFG4)
    elif kind == "dynamic":
        t = Technique(kind, [GroupedAlexNet(CFG4)], CFG4)
    else:
        t = Technique(kind, [SlimmableAlexNet(CFG4, switchable_bn=kind == "slimmable")], CFG4)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    for k in range(1, G + 1):
        static = t.materialize(k)
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(static(x), t.module(k)(x), rtol=0, atol=1e-5)
        assert onnx_parity(to_onnx_bytes(static, 13, 7), t.module(k), images) <= 1e-4
        assert torchscript_parity(to_torchscript(static), t.module(k), images) <= 1e-4


def test_l1_pruning_keeps_the_largest_filters():
    torch.manual_seed(0)
    full = SlimmableAlexNet(width_config(CFG4, 4))
    with torch.no_grad():
        full.convs[0].weight.mul_(0.01)
        full.convs[0].weight[[1, 5]] *= 1000  # the two strongest filters of 8
    pruned = l1_prune(full, 1, 4)  # keep 2 of 8
    assert torch.equal(pruned.convs[0].weight, full.convs[0].weight[[1, 5]])
    assert torch.equal(pruned.convs[1].weight, full.convs[1].weight[pruned_rows(full.convs[1].weight, 4)][:, [1, 5]])


def pruned_rows(w, n):
    return w.abs().sum(dim=(1, 2, 3)).topk(n).indices.sort().values


def test_train_baselines_end_to_end():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    cfg = TrainConfig(epochs=1, batch_size=32, schedule="constant")
    static, hist = train_baseline("static", CFG4, cfg, x, y, seed=0)
    assert len(static.nets) == 4 and [h["width"] for h in hist] == [1, 2, 3, 4]
    slim, _ = train_baseline("slimmable", CFG4, cfg, x, y, seed=0)
    assert all(bn.num_batches_tracked.item() == 2 for bn in slim.nets[0].bns[0])  # every width trained every step
    trunc, _ = train_baseline("truncated", CFG4, cfg, x, y, seed=0, static=static)
    assert torch.equal(trunc.nets[0].convs[4].weight, static.nets[-1].convs[4].weight)
    pruned, hist = train_baseline("pruned", CFG4, cfg, x, y, seed=0, static=static, finetune_epochs=1)
    assert len(pruned.nets) == 4 and pruned.nets[-1] is static.nets[-1] and len(hist) == 3
    with pytest.raises(ValueError, match="train 'static' first"):
        train_baseline("pruned", CFG4, cfg, x, y, seed=0)
