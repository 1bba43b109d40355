"""Helpers shared by the tests: repository paths, tiny model sizes, fake data, ports."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DATA_ENV = "DYNDNN_DATA"  # an offline image-folder archive of the real CIFAR-10 (the Makefile's DATA sets it)
TINY = dict(conv_channels=(8, 16, 16, 16, 16), fc_features=(32, 32))


def real_cifar() -> dict[str, str | None] | None:
    """The real CIFAR-10 the tests train and evaluate on, as config edits (data.source, data.path):
    the archive named by $DYNDNN_DATA, else the official release in the per-user cache
    (`make data`); None when neither is there. A $DYNDNN_DATA that names nothing is an error."""
    import os

    if os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV]).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"${DATA_ENV} (the Makefile's DATA) names {path}, which does not exist")
        return {"data.source": "images", "data.path": str(path)}
    from dyndnn.learn.official import cached, official_release

    if cached(official_release()):
        return {"data.source": "torchvision", "data.path": None}
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_image_tar(path: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """A .tar.gz in image-folder layout with random 32x32 JPEGs: top/{split}/{class}/{i}.jpg."""
    from PIL import Image

    from dyndnn.learn.data import CLASSES

    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in per_class.items():
            for cls in CLASSES:
                for i in range(n):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
                    info = tarfile.TarInfo(f"fake-cifar/{split}/{cls}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


def snakemake(workdir, *args, check=True, cores: str | None = "2"):
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *(["--cores", cores] if cores else []),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run or dry run: rule -> job count."""
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, re.M)}


def write_config(path, base="quick.yaml", **edits):
    config = yaml.safe_load((REPO / "config" / base).read_text())
    for dotted, value in edits.items():
        node = config
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


def host_bundle(tmp_path: Path, models: list[dict], board: dict):
    """A bundle for this host's own architecture and interpreter: the bundle machinery
    without downloads (the runtime folder is pre-seeded in a private cache)."""
    import json

    from dyndnn.boards.bundle import build_bundle
    from dyndnn.boards.packages import BundleSpec
    from dyndnn.boards.profiling import runner_files

    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    block = {"arch": "amd64", "python": python, "source": "pypi", "packages": ["onnxruntime"], "interpreter": sys.executable}
    spec = BundleSpec(**{**block, "packages": tuple(block["packages"])})
    runtime = tmp_path / "cache" / "runtime" / spec.key()
    (runtime / "site").mkdir(parents=True)
    (runtime / "lock.json").write_text(json.dumps({"key": spec.key(), "arch": "amd64", "source": "pypi", "wheels": []}))
    board = {**board, "bundle": block}
    tar = tmp_path / "b" / "bundle.tar.gz"
    manifest = build_bundle(board, models, runner_files(), tar, tmp_path / "b" / "bundle.json", cache=tmp_path / "cache")
    return board, tar, manifest


def tiny_onnx_models(folder: Path, groups=(1, 4)) -> list[dict]:
    """ONNX exports (opset 13, IR 7) of a seeded tiny dynamic DNN at the given group counts, as profile_board's models."""
    import torch

    from dyndnn.learn.export import to_onnx_bytes
    from dyndnn.learn.model import GroupedAlexNet, ModelConfig

    torch.manual_seed(0)
    net = GroupedAlexNet(ModelConfig(**TINY))
    out = []
    for k in groups:
        p = folder / f"g{k}.onnx"
        p.write_bytes(to_onnx_bytes(net.materialize(k), 13, 7))
        out.append({"label": f"dynamic/g{k}", "path": str(p), "model": "dynamic", "groups": k})
    return out
