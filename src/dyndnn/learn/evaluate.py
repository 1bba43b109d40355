"""Accuracy, confidence and cost of every configuration of a trained model.

Scope: inference on the test split, top-1 (overall and per class), the summed
softmax confidence of the correct class (the paper's Fig. 3, normalised to the
full model), MACs, parameters and weight bytes. No training, no timing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from dyndnn.arch import DYNAMIC
from dyndnn.config import ExportConfig
from dyndnn.learn.data import CLASSES, normalize
from dyndnn.learn.export import graph_macs, to_onnx_bytes
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.technique import BYTES_PER_VALUE, state_bytes

__all__ = ["count_macs", "config_params", "predict", "evaluate_model"]


def count_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of one image, counted with hooks
    on every Conv and Linear (per image: batch dimension divided out)."""
    total = 0

    def hook(m, inputs, out):
        nonlocal total
        if isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
        else:  # Conv1d / Conv2d: each output element reads in/groups * kernel inputs
            per_out = m.in_channels // m.groups * int(np.prod(m.kernel_size))
            total += out[0].numel() * per_out

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            module.eval()(x[:1])
    finally:
        for h in handles:
            h.remove()
    return total


def config_params(model: GroupedAlexNet, k: int) -> tuple[int, int]:
    """(parameters, weight bytes) that the k-group configuration needs resident.

    Counts each group's own tensors (no zero padding); bytes include BN running
    statistics. The head: group slices 1..k for `sum` and `ensemble`, head k alone for `per_config`.
    """
    modules = [m for j in range(k) for m in model.group_modules(j) if m not in model.heads]
    modules += [model.heads[k - 1]] if model.cfg.head == "per_config" else list(model.heads[:k])
    params = sum(p.numel() for m in modules for p in m.parameters())
    buffers = sum(b.numel() for m in modules for n, b in m.named_buffers() if n != "num_batches_tracked")
    return params, (params + buffers) * BYTES_PER_VALUE


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Softmax probabilities (N, classes) for uint8 images (N, 3, 32, 32)."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(normalize(x[i : i + batch_size].to(device))).softmax(1).cpu() for i in range(0, len(x), batch_size)])


def _cost(technique, k: int, probe: torch.Tensor, export: ExportConfig) -> dict:
    """MACs (connected; executed = counted from the ONNX graph the export job writes: its
    layout, opset and IR version), params and weight bytes of configuration k."""
    static = technique.materialize(k, export.layout)
    executed = sum(graph_macs(to_onnx_bytes(static, export.opset, export.ir_version, technique.cfg.image_size)).values())
    if technique.kind == DYNAMIC:  # per-group modules: hooks see only the connections that exist
        net = technique.nets[0]
        with net.at_groups(k):
            macs = count_macs(net, probe)
        params, weight_bytes = config_params(net, k)
    else:  # dense sliced layers: what executes is what is connected
        macs = count_macs(static, probe)
        params = sum(p.numel() for p in static.parameters())
        weight_bytes = state_bytes(static)
    return {"macs": macs, "macs_executed": executed, "params": params, "weight_bytes": weight_bytes}


def evaluate_model(
    technique, x: torch.Tensor, y: torch.Tensor, name: str, batch_size: int = 500, export: ExportConfig | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per configuration k = 1..G of any technique (`baselines.Technique`), plus a
    per-class table; `export`: the export settings whose graph's executed MACs are reported."""
    export = export or ExportConfig()
    rows, per_class = [], []
    probe = normalize(x[:1])
    for k in range(1, technique.groups + 1):
        probs = predict(technique.module(k), x, batch_size)
        correct = probs.argmax(1) == y
        rows.append(
            {
                "model": name,
                "groups": k,
                "width_pct": round(100 * k / technique.groups),
                "top1": correct.float().mean().item(),
                "confidence_sum": probs[torch.arange(len(y)), y].sum().item(),
                **_cost(technique, k, probe, export),
                "layout": technique.layout(export.layout),
                "n_images": len(y),
            }
        )
        for c, cls in enumerate(CLASSES):
            mask = y == c
            per_class.append(
                {
                    "model": name,
                    "groups": k,
                    "class": cls,
                    "top1": correct[mask].float().mean().item() if mask.any() else float("nan"),
                    "n_images": int(mask.sum()),
                }
            )
    table = pd.DataFrame(rows)
    table["resident_bytes"] = technique.resident_bytes()  # what must be stored to serve every configuration
    table["confidence_norm"] = table["confidence_sum"] / table["confidence_sum"].iloc[-1]
    return table, pd.DataFrame(per_class)
