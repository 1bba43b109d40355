"""ONNX export of one k-group sub-network, with a parity check and a manifest.

Scope: materialise the k-group network (no slicing ops in the graph), export a
static-shape fp32 single-image graph at a fixed opset and IR version (old
runtimes such as ONNX Runtime 1.10 reject newer IRs), check it with ONNX
Runtime against PyTorch on real test images, and describe it in a manifest.
Nothing is written unless every check passes.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from dyndnn.arch import arch_config
from dyndnn.config import ExportConfig, from_block
from dyndnn.learn.data import load_split, normalize
from dyndnn.learn.technique import Technique, load_technique
from dyndnn.provenance import write_atomic

__all__ = [
    "ExportError",
    "to_onnx_bytes",
    "onnx_parity",
    "graph_macs",
    "check_manifest",
    "export_onnx",
    "export_technique",
    "INPUT",
    "to_torchscript",
    "torchscript_parity",
]

INPUT, OUTPUT = "input", "logits"


class ExportError(RuntimeError):
    pass


def to_onnx_bytes(module: torch.nn.Module, opset: int, ir_version: int, image_size: int = 32) -> bytes:
    """Export `module` for a (1, 3, H, W) input; returns the serialized, checked model."""
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is the one that still writes opset 13
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            torch.zeros(1, 3, image_size, image_size),
            buf,
            opset_version=opset,
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
        )
    proto = onnx.load_from_string(buf.getvalue())
    if proto.ir_version < ir_version:
        raise ExportError(f"exporter wrote IR {proto.ir_version}, older than the requested {ir_version}")
    proto.ir_version = ir_version
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def onnx_parity(onnx_bytes: bytes, module: torch.nn.Module, images: torch.Tensor) -> float:
    """Largest |ORT - PyTorch| logit difference over single-image runs of `images` (uint8)."""
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for img in images:
            x = normalize(img.unsqueeze(0))
            ref = module(x).numpy()
            got = sess.run([OUTPUT], {INPUT: x.numpy()})[0]
            worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def to_torchscript(module: torch.nn.Module, image_size: int = 32) -> torch.jit.ScriptModule:
    """A traced single-image TorchScript module, for boards whose runtime is torch.

    TorchScript is deprecated in new torch, but it is what the old torch builds that
    exist for 32-bit ARM boards can load (torch.export archives need a new torch)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.trace(module.eval(), torch.zeros(1, 3, image_size, image_size))


def torchscript_parity(scripted, module: torch.nn.Module, images: torch.Tensor) -> float:
    with torch.no_grad():
        return max(float((scripted(x) - module(x)).abs().max()) for x in (normalize(img.unsqueeze(0)) for img in images))


def graph_macs(onnx_bytes: bytes) -> dict[str, int]:
    """Multiply-accumulates per inference that the graph executes, by operator type,
    counted from its Conv, Gemm and MatMul nodes and their inferred shapes (zero
    blocks of a weight count: they run). Batch size is the graph's input's."""
    proto = onnx.shape_inference.infer_shapes(onnx.load_from_string(onnx_bytes))
    shapes = {init.name: list(init.dims) for init in proto.graph.initializer}
    for v in (*proto.graph.input, *proto.graph.value_info, *proto.graph.output):
        shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    totals: dict[str, int] = {}
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w, out = shapes.get(node.input[1]), shapes.get(node.output[0])
        if not w or not out or not all(out):
            raise ExportError(f"graph_macs: no static shape for {node.op_type} node {node.name!r}")
        if node.op_type == "Conv":  # each output element reads C_in / group x kernel inputs
            macs = int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type == "Gemm":  # (M, K) x (K, N) after the transposes
            macs = int(np.prod(out)) * (w[1] if attrs.get("transB", 0) else w[0])
        else:
            macs = int(np.prod(out)) * w[-2]
        totals[node.op_type] = totals.get(node.op_type, 0) + macs
    return totals


def _describe(onnx_bytes: bytes) -> dict:
    proto = onnx.load_from_string(onnx_bytes)

    def shapes(values):
        return {
            v.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in v.type.tensor_type.shape.dim] for v in values
        }

    def dtypes(values):
        return {v.name: onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name for v in values}

    return {
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "bytes": len(onnx_bytes),
        "ir_version": proto.ir_version,
        "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "domains": sorted({o.domain or "ai.onnx" for o in proto.opset_import}),
        "inputs": shapes(proto.graph.input),
        "outputs": shapes(proto.graph.output),
        "dtypes": {**dtypes(proto.graph.input), **dtypes(proto.graph.output)},
    }


def check_manifest(manifest: dict, opset: int, ir_version: int, image_size: int = 32, num_classes: int = 10) -> None:
    """What old runtimes (ONNX Runtime 1.10, TensorRT 8.2) need: the requested opset and IR
    exactly, the standard domain only, one static fp32 (1, 3, H, W) input and (1, classes) output."""
    problems = []
    if manifest["ir_version"] != ir_version or manifest["opset"] != opset:
        problems.append(f"IR {manifest['ir_version']} / opset {manifest['opset']}, expected IR {ir_version} / opset {opset}")
    if manifest["domains"] != ["ai.onnx"]:
        problems.append(f"operator domains {manifest['domains']} (only the standard one is portable)")
    if manifest["inputs"] != {INPUT: [1, 3, image_size, image_size]} or manifest["outputs"] != {OUTPUT: [1, num_classes]}:
        problems.append(
            f"inputs {manifest['inputs']} / outputs {manifest['outputs']}, expected static {INPUT} [1, 3, {image_size}, {image_size}] and {OUTPUT} [1, {num_classes}]"
        )
    if set(manifest["dtypes"].values()) != {"float32"}:
        problems.append(f"tensor types {manifest['dtypes']}, expected float32 only")
    if problems:
        raise ExportError("exported ONNX is not portable to the boards' runtimes: " + "; ".join(problems))


def export_technique(
    checkpoint: str, test_data: str, outputs: list[tuple[str, str, str | None]], name: str | None = None, **settings
) -> list[dict]:
    """Export configurations 1..len(outputs) of `checkpoint`: outputs[k - 1] = (onnx, manifest,
    torchscript or None) of configuration k, with the export `settings` (ExportConfig's keys).
    The checkpoint and the test images are read once."""
    export = from_block(ExportConfig, settings)
    technique, ckpt = load_technique(checkpoint)
    x, _ = load_split(test_data)
    return [export_onnx(technique, ckpt, x, k, out, export, name) for k, out in enumerate(outputs, start=1)]


def export_onnx(
    technique: Technique,
    ckpt: dict,
    x: torch.Tensor,
    groups: int,
    outputs: tuple[str, str, str | None],
    export: ExportConfig,
    name: str | None = None,
) -> dict:
    """Export the `groups`-group sub-network of a loaded technique (`ckpt`: its checkpoint) as
    ONNX (and TorchScript when a path is given) to `outputs` = (onnx, manifest, torchscript or
    None), in the `export` settings' layout and opset, checked on the test images `x`; raise
    ExportError on a parity failure, writing nothing. `name` labels the manifest (default: the
    checkpoint's technique)."""
    out_onnx, out_manifest, out_torchscript = outputs
    opset, ir_version, layout = export.opset, export.ir_version, export.layout
    parity_images, parity_atol = export.parity_images, export.parity_atol
    static = technique.materialize(groups, layout)
    onnx_bytes = to_onnx_bytes(static, opset, ir_version, technique.cfg.image_size)
    err_dynamic = onnx_parity(onnx_bytes, technique.module(groups), x[:parity_images])
    if not err_dynamic <= parity_atol:
        raise ExportError(
            f"{ckpt['kind']}: ONNX output differs from the PyTorch model at {groups} groups by {err_dynamic:.3g} > {parity_atol}"
        )
    scripted = to_torchscript(static, technique.cfg.image_size) if out_torchscript else None
    err_script = torchscript_parity(scripted, technique.module(groups), x[:parity_images]) if scripted is not None else None
    if err_script is not None and not err_script <= parity_atol:
        raise ExportError(f"{ckpt['kind']}: TorchScript output differs at {groups} groups by {err_script:.3g} > {parity_atol}")
    macs_by_op = graph_macs(onnx_bytes)
    manifest = {
        **_describe(onnx_bytes),
        "model": name or ckpt["kind"],
        "technique": ckpt["kind"],
        "groups": groups,
        "layout": technique.layout(layout),
        "macs_executed": sum(macs_by_op.values()),
        "macs_by_op": macs_by_op,
        "arch": arch_config(technique.cfg, groups),
        "parity": {
            "images": int(min(parity_images, len(x))),
            "max_abs_diff": err_dynamic,
            "atol": parity_atol,
            "reference": f"{ckpt['kind']} PyTorch model at {groups} groups",
        },
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "torch": torch.__version__,
    }
    check_manifest(manifest, opset, ir_version, technique.cfg.image_size, technique.cfg.num_classes)
    if scripted is not None:
        manifest["torchscript"] = {"path": Path(out_torchscript).name, "max_abs_diff": err_script}
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
        write_atomic(out_torchscript, buf.getvalue())
    write_atomic(out_onnx, onnx_bytes)
    write_atomic(out_manifest, json.dumps(manifest, indent=2))
    return manifest
