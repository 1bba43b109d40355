"""Helpers shared by the tests: repository paths, tiny model sizes, fake data, ports."""

from __future__ import annotations

import io
import socket
import tarfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
TINY = dict(conv_channels=(8, 16, 16, 16, 16), fc_features=(32, 32))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_image_tar(path: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """A .tar.gz in image-folder layout with random 32x32 JPEGs: top/{split}/{class}/{i}.jpg."""
    from PIL import Image

    from dyndnn.data import CLASSES

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
