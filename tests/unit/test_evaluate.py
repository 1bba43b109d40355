"""MAC and parameter counting (dyndnn.learn.evaluate), checked against hand counts of the AlexNet
layer formulas: the accuracy table's `macs`, `params` and `weight_bytes` columns and the
recoverable-compression claim rest on them."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY

from dyndnn.arch import ModelConfig
from dyndnn.learn.evaluate import config_params, count_macs
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.slimmable import SlimmableAlexNet, width_config

G = 4
SIDES = (32, 16, 8, 8, 8)  # output side of conv1..conv5 on 32x32 inputs (pools after conv1, conv2, conv5)
FEATURES = 4 * 4  # spatial positions after the third pool


def dense_macs(conv: list[int], fc: list[int], classes: int = 10) -> int:
    """A dense AlexNet: 3x3 convs (H*W*C_out*C_in*9), then FC layers and the head (in * out)."""
    macs, c_in = 0, 3
    for side, c_out in zip(SIDES, conv):
        macs += side * side * c_out * c_in * 9
        c_in = c_out
    f_in = c_in * FEATURES
    for f_out in [*fc, classes]:
        macs += f_in * f_out
        f_in = f_out
    return macs


def grouped_macs(conv: list[int], fc: list[int], k: int, reads, classes: int = 10) -> int:
    """k groups of a grouped network: output group j reads `reads(j)` input groups (nested: j,
    grouped: 1); conv1 reads the whole image in every group; head "sum": one slice per group."""
    macs, c_in = 0, None
    for side, c_out in zip(SIDES, conv):
        macs += sum(side * side * (c_out // G) * (3 if c_in is None else reads(j) * c_in // G) * 9 for j in range(1, k + 1))
        c_in = c_out
    f_in = c_in * FEATURES
    for f_out in fc:
        macs += sum((f_out // G) * (reads(j) * f_in // G) for j in range(1, k + 1))
        f_in = f_out
    return macs + k * (f_in // G) * classes


@pytest.mark.parametrize("k", range(1, G + 1))
def test_count_macs_matches_the_layer_formulas(k):
    cfg = ModelConfig(groups=G, **TINY)
    probe = torch.zeros(1, 3, 32, 32)
    widths = width_config(cfg, k)
    assert count_macs(SlimmableAlexNet(widths).materialize(1), probe) == dense_macs(list(widths.conv_channels), list(widths.fc_features))
    for connectivity, reads in (("nested", lambda j: j), ("grouped", lambda j: 1)):
        net = GroupedAlexNet(ModelConfig(groups=G, connectivity=connectivity, **TINY))
        with net.at_groups(k):
            assert count_macs(net, probe) == grouped_macs(list(cfg.conv_channels), list(cfg.fc_features), k, reads), connectivity
    if k == G:  # nested at full width: (G + 1) / 2G of the dense convs after conv1 (the pruned upper triangle is gone)
        assert grouped_macs(list(cfg.conv_channels), list(cfg.fc_features), k, lambda j: j) < dense_macs(
            list(cfg.conv_channels), list(cfg.fc_features)
        )


@pytest.mark.parametrize("k", range(1, G + 1))
def test_config_params_counts_each_groups_own_tensors(k):
    """Nested, head sum: conv weights (no bias) + BN affine, FC weight + bias, the head slices
    (its bias belongs to group 1); weight bytes add the BN running statistics, 4 bytes each."""
    cfg = ModelConfig(groups=G, connectivity="nested", head="sum", **TINY)
    conv, fc = list(cfg.conv_channels), list(cfg.fc_features)
    params, bn_stats, c_in = 0, 0, None
    for c_out in conv:
        per = c_out // G
        params += sum(per * (3 if c_in is None else j * c_in // G) * 9 + 2 * per for j in range(1, k + 1))
        bn_stats += k * 2 * per
        c_in = c_out
    f_in = c_in * FEATURES
    for f_out in fc:
        params += sum((f_out // G) * (j * f_in // G) + f_out // G for j in range(1, k + 1))
        f_in = f_out
    params += k * (f_in // G) * 10 + 10
    assert config_params(GroupedAlexNet(cfg), k) == (params, 4 * (params + bn_stats))


PROB_ATOL = 1e-6  # the bound evaluation guarantees across thread counts (measured: 0 on AMD, 1.5e-8 on Intel AVX512)


@pytest.mark.parametrize("net", ["grouped", "slimmable"])
def test_predictions_do_not_depend_on_the_thread_count(net):
    """The evaluate job takes every core it is given: its numbers must not depend on how many.
    oneDNN and the BLAS split their reductions by thread on some CPUs (Intel AVX512: the last
    bit of a probability moves), so the guarantee is a bound, not bit identity: probabilities
    within PROB_ATOL, and the same top-1 wherever the top two are further apart than twice that
    (top-1 and the summed confidence of the test set then agree to 1e-6 per image)."""
    from dyndnn.learn.evaluate import predict

    torch.manual_seed(0)
    model = GroupedAlexNet(ModelConfig()) if net == "grouped" else SlimmableAlexNet(ModelConfig(), switchable_bn=True)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    before = torch.get_num_threads()
    try:
        out = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            out[n] = predict(model, x, batch_size=32)
    finally:
        torch.set_num_threads(before)
    assert (out[1] - out[2]).abs().max().item() <= PROB_ATOL
    top2 = out[1].topk(2, dim=1).values
    decided = top2[:, 0] - top2[:, 1] > 2 * PROB_ATOL
    assert decided.float().mean() > 0.9  # the sample tests something: nearly every image has a clear top-1
    assert torch.equal(out[1].argmax(1)[decided], out[2].argmax(1)[decided])
