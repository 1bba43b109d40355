"""Export (dyndnn.learn.export): the MACs an exported graph executes, counted from the ONNX graph."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY

from dyndnn.arch import ModelConfig
from dyndnn.learn.evaluate import count_macs
from dyndnn.learn.export import export_technique, graph_macs, to_onnx_bytes
from dyndnn.learn.model import GroupedAlexNet, NestedLayer

G = 4


def tiny(connectivity, head):
    torch.manual_seed(0)
    return GroupedAlexNet(ModelConfig(groups=G, connectivity=connectivity, head=head, **TINY)).eval()


@pytest.mark.parametrize("head", ["sum", "per_config", "ensemble"])
def test_split_export_executes_only_the_connected_macs(head):
    """Nested, layout split: the MACs counted from the ONNX graph equal the connected MACs
    (the dynamic model's per-group layers); layout dense executes the dense widths'."""
    model = tiny("nested", head)
    probe = torch.zeros(1, 3, 32, 32)
    for k in range(1, G + 1):
        with model.at_groups(k):
            connected = count_macs(model, probe)
        dense = count_macs(tiny("nested", head).materialize(k, "dense"), probe)
        split_graph = graph_macs(to_onnx_bytes(model.materialize(k, "split"), 13, 7))
        dense_graph = graph_macs(to_onnx_bytes(model.materialize(k, "dense"), 13, 7))
        assert sum(split_graph.values()) == connected
        assert sum(dense_graph.values()) == dense
        assert (k == 1) == (connected == dense), "k > 1: pruning removes connections"
        nested = [m for m in model.materialize(k, "split").modules() if isinstance(m, NestedLayer)]
        assert len(nested) == 4 + len(model.cfg.fc_features) and all(len(n.ops) == k for n in nested)


def test_graph_macs_counts_conv_gemm_and_matmul():
    """Hand counts: 3x3 conv 3 -> 8 on 4x4 (padding 1), grouped 1x1 conv 8 -> 8 in 2 groups, gemm 128 -> 5."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 1, groups=2), torch.nn.Flatten(), torch.nn.Linear(128, 5)
    )
    proto = to_onnx_bytes(net, 13, 7, image_size=4)
    assert graph_macs(proto) == {"Conv": 16 * 8 * 27 + 16 * 8 * 4, "Gemm": 128 * 5}


def test_export_technique_writes_every_configuration_from_one_load(tmp_path):
    """One job per technique: configurations 1..G from one read of the checkpoint and the test
    images; each ONNX equals the PyTorch model on them, and the manifest says so."""
    from dyndnn.config import TrainConfig
    from dyndnn.learn.technique import Technique, checkpoint, save_atomic

    model = tiny("nested", "sum")
    save_atomic(checkpoint(Technique("dynamic", [model], model.cfg), TrainConfig(), 0, []), tmp_path / "ckpt.pt")
    torch.save(
        {"images": torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), "labels": torch.zeros(8, dtype=torch.long)},
        tmp_path / "test.pt",
    )
    outputs = [(str(tmp_path / f"g{k}.onnx"), str(tmp_path / f"g{k}.json"), None) for k in range(1, G + 1)]
    manifests = export_technique(
        str(tmp_path / "ckpt.pt"),
        str(tmp_path / "test.pt"),
        outputs,
        opset=13,
        ir_version=7,
        parity_images=4,
        parity_atol=1e-4,
        name="dynamic",
    )
    assert [m["groups"] for m in manifests] == list(range(1, G + 1))
    assert all(m["parity"]["max_abs_diff"] <= 1e-4 and m["layout"] == "split" for m in manifests)
    assert sorted(p.name for p in tmp_path.glob("g*")) == sorted(f"g{k}.{e}" for k in range(1, G + 1) for e in ("json", "onnx"))
