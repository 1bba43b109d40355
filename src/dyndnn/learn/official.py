"""The official CIFAR-10 release (the "CIFAR-10 python version"): downloaded once per user,
MD5-checked, read straight from its archive.

Scope: where the per-user cache is, the download (streamed into a private temporary
file, checked against the published MD5, then renamed into the cache: an interrupted or
corrupt download leaves nothing behind and is never mistaken for the archive), and the
decoding of the archive's pickled batches into uint8 arrays. URL, file name and MD5 are
torchvision's (`torchvision.datasets.CIFAR10`), so the data is the one every CIFAR-10
paper uses. No torch: the arrays are numpy.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["OfficialRelease", "official_release", "cache_dir", "cached", "download", "read_split", "DownloadError"]

CACHE_ENV = "DYNDNN_CACHE"  # overrides the per-user cache folder (tests, shared machines)
SPLIT_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CHUNK = 1 << 20
TIMEOUT_S = 60


class DownloadError(OSError):
    """The archive could not be fetched or failed its checksum; nothing was left in the cache."""


@dataclass(frozen=True)
class OfficialRelease:
    """Where the release lives and what its bytes must hash to."""

    url: str
    filename: str
    md5: str


def official_release() -> OfficialRelease:
    """The release as torchvision names it (URL, file name, MD5 of the archive)."""
    from torchvision.datasets import CIFAR10

    return OfficialRelease(CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5)


def cache_dir() -> Path:
    """The per-user cache: $DYNDNN_CACHE, else $XDG_CACHE_HOME/dyndnn, else ~/.cache/dyndnn.
    One download serves every clone of the repository."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "dyndnn"


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def cached(release: OfficialRelease, cache: Path | None = None) -> Path | None:
    """The cached archive when it is there and passes its MD5 check, else None."""
    path = (cache or cache_dir()) / "cifar10" / release.filename
    return path if path.is_file() and _md5(path) == release.md5 else None


def download(release: OfficialRelease, cache: Path | None = None, log=print) -> Path:
    """The archive in the cache, downloaded if it is not there yet (or failed its check).

    Streamed into `<name>.<pid>.part` beside the target with its MD5 computed on the way;
    renamed into place only when the MD5 matches. On any failure (no network, a dropped
    connection, a short or wrong body, a full disk) the partial file is removed and a
    DownloadError says what happened and what to do instead."""
    target = (cache or cache_dir()) / "cifar10" / release.filename
    if cached(release, target.parent.parent):
        return target
    if target.exists():
        log(f"{target}: cached copy fails its MD5 check ({release.md5}); downloading it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f"{target.name}.{os.getpid()}.part")
    h = hashlib.md5(usedforsecurity=False)
    log(f"downloading {release.url} into {target}")
    try:
        with urllib.request.urlopen(release.url, timeout=TIMEOUT_S) as response, open(part, "wb") as f:
            expected = response.headers.get("Content-Length")
            got = 0
            while block := response.read(CHUNK):
                f.write(block)
                h.update(block)
                got += len(block)
            if expected is not None and got != int(expected):
                raise DownloadError(f"{release.url}: the connection closed after {got} of {expected} bytes; run again to retry")
        if h.hexdigest() != release.md5:
            raise DownloadError(
                f"{release.url}: MD5 {h.hexdigest()} does not match the published {release.md5} (a damaged or substituted "
                "file); nothing was cached"
            )
        os.replace(part, target)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except (OSError, EOFError, ValueError, http.client.HTTPException) as e:  # URLError, IncompleteRead, timeouts, a full disk
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"could not download CIFAR-10 from {release.url} into {target.parent} ({type(e).__name__}: {e}). Without internet, "
            "use an offline image-folder archive: `make quick DATA=<archive.tar.gz>`, or set data.source: images and data.path"
        ) from None
    log(f"{target}: MD5 {release.md5} verified")
    return target


class _BatchUnpickler(pickle.Unpickler):
    """Only what a CIFAR-10 batch holds (dicts, lists, strings, numbers and numpy arrays):
    the archive comes from the network, and a pickle may otherwise run any code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a CIFAR-10 batch does not hold {module}.{name}")


def _batch(tar: tarfile.TarFile, member: str) -> dict:
    names = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
    if member not in names:
        raise ValueError(f"{tar.name}: no member {member} (not the CIFAR-10 python release)")
    blob = tar.extractfile(names[member]).read()
    return _BatchUnpickler(io.BytesIO(blob), encoding="latin1").load()


def read_split(archive: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)) of a split, in the release's order."""
    images, labels = [], []
    with tarfile.open(archive) as tar:
        for member in SPLIT_BATCHES[split]:
            d = _batch(tar, member)
            data = np.asarray(d["data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(d["labels"]) != len(data):
                raise ValueError(f"{archive}: member {member} is not a CIFAR-10 batch (data {data.shape}, {len(d['labels'])} labels)")
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(d["labels"], dtype=np.int64))
    x, y = np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"{archive}: labels outside 0..9 in the {split} split")
    return x, y


def main() -> int:
    """`python -m dyndnn.learn.official` (make data): the release into the per-user cache."""
    release = official_release()
    try:
        archive = download(release)
    except DownloadError as e:
        print(f"make data: {e}")
        return 2
    print(f"{archive}: the official CIFAR-10 release, MD5 {release.md5} verified (every clone of this user reads it from here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
