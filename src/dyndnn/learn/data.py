"""CIFAR-10: fetch from one of two sources, decode once into uint8 tensors.

Sources:
* ``torchvision`` (default): the official release (torchvision's URL and MD5), downloaded
  once into the per-user cache and read from its archive (`dyndnn.learn.official`);
* ``images``: a folder or ``.tar.gz`` in image-folder layout
  (``<top>/{train,test}/<class>/<file>.jpg``), e.g. the offline JPEG mirror.

`prepare` picks a stratified, seeded subset when asked, decodes it into
``{"images": uint8 (N, 3, 32, 32), "labels": int64 (N,)}`` and reports counts and
checksums for the sidecar. Augmentation and normalisation live in `train`.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dyndnn.learn import official
from dyndnn.provenance import sha256_file, sha256_tree

__all__ = [
    "CLASSES",
    "fetch",
    "prepare",
    "cached_archive",
    "sha256_file",
    "load_split",
    "augment",
    "apply_views",
    "draw_views",
    "normalize",
]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def sha256_tensors(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def fetch(source: str, path: str | None = None, sha256: str | None = None, cache: str | Path | None = None) -> dict:
    """Make the raw data available and describe it: the file to read (`path`, for this
    machine only) and what a record names it by (`file` and `sha256`, never a path).
    `torchvision`: the official release from the per-user cache, downloaded once (`official`);
    `images`: a folder or .tar.gz, checked against `sha256` when given."""
    if source == "torchvision":
        archive = official.download(official.official_release(), Path(cache) if cache else None)
        return {"source": "torchvision", "path": str(archive), "file": archive.name, "sha256": sha256_file(archive)}
    src = Path(path).resolve()
    if not src.exists():
        raise FileNotFoundError(f"data.path {src} does not exist (source=images needs a folder or .tar.gz)")
    digest = sha256_file(src) if src.is_file() else sha256_tree(src)  # a folder by every file's path and bytes
    if sha256 and digest != sha256:
        raise ValueError(f"{src}: sha256 {digest} does not match data.sha256 {sha256}")
    return {"source": "images", "path": str(src), "file": src.name, "sha256": digest}


def _stratified(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Indices of a class-balanced subset of size n (all when None), sorted."""
    if n is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    per_class = n // len(CLASSES)
    picked = []
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ValueError(f"class {CLASSES[c]} has {len(idx)} images, fewer than the {per_class} asked for")
        picked.append(rng.permutation(idx)[:per_class])
    return np.sort(np.concatenate(picked))


IMAGE_SHAPE = (32, 32, 3)
MAX_MEMBER_BYTES = 1 << 20  # a 32x32 image needs a few kB in any format; more is not a CIFAR-10 image (or a bomb)
EIGHT_BIT_MODES = ("RGB", "L", "P", "RGBA", "LA", "CMYK", "YCbCr")  # what converts to 8-bit RGB without loss of meaning
LAYOUT = f"<top>/{{train,test}}/<class>/<image> with class one of {', '.join(CLASSES)} and image ending in {' '.join(IMAGE_SUFFIXES)}"


def _decode(blob: bytes, name: str) -> np.ndarray:
    """One member as a (32, 32, 3) uint8 image; anything else is an error naming the member. The
    size is read from the header before any pixel is decoded (no decompression bomb is expanded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as im:
            if im.size != IMAGE_SHAPE[:2]:
                raise ValueError(f"data member {name}: {im.size[0]}x{im.size[1]} pixels, CIFAR-10 images are 32x32")
            if im.mode not in EIGHT_BIT_MODES:
                raise ValueError(f"data member {name}: image mode {im.mode} is not 8-bit colour or grey ({', '.join(EIGHT_BIT_MODES)})")
            image = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"data member {name}: not a readable image ({type(e).__name__}: {e})") from None
    return image


def _archive_read(path: Path, read, *args):
    """read(*args) on an image folder or a .tar.gz; a corrupt or truncated archive is an error
    naming the file and the key."""
    try:
        return read(*args)
    except (EOFError, tarfile.TarError, zlib.error, OSError) as e:
        if path.is_dir():
            raise
        raise ValueError(
            f"data.path {path}: the archive is corrupt or truncated ({type(e).__name__}: {e}); download it again and "
            "check it against its published sha256 (set data.sha256 to have it checked before any job runs)"
        ) from None


def _entries(path: Path) -> list[tuple[str, str, int]]:
    """(name, kind, bytes) of every member of an archive or entry of a folder; kind is file, dir,
    link (symbolic or hard) or other. A folder's names are relative to it."""
    if path.is_dir():
        out = []
        for p in sorted(path.rglob("*")):
            kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file" if p.is_file() else "other"
            out.append((p.relative_to(path).as_posix(), kind, p.lstat().st_size))
        return out
    with tarfile.open(path) as tar:
        return [
            (m.name, "link" if m.issym() or m.islnk() else "dir" if m.isdir() else "file" if m.isreg() else "other", m.size)
            for m in tar.getmembers()
        ]


def _layout(path: Path) -> dict[str, list[tuple[str, ...]]]:
    """The one canonical layout: every member's name plain (no ./, .., absolute or empty parts),
    one top folder (a folder may also hold the splits itself), directories only at the top, split
    and class levels, regular image files only at <top>/<split>/<class>/<image>, no name twice.
    Returns each split's members; anything else is refused naming the member."""
    entries = _entries(path)
    if not entries:
        raise ValueError(f"{path}: empty (expected {LAYOUT})")
    for name, kind, size in entries:
        parts = name.split("/")
        if name.startswith(("/", "./")) or any(p in ("", ".", "..") for p in parts) or "\\" in name:
            raise ValueError(f"data member {name!r}: not a plain relative path (no ./, .., absolute or empty parts); expected {LAYOUT}")
        if kind == "link":
            raise ValueError(f"data member {name}: a link; the data set takes regular files only (copy the file in instead)")
        if kind == "other":
            raise ValueError(f"data member {name}: not a regular file or folder")
        if kind == "file" and size > MAX_MEMBER_BYTES:
            raise ValueError(f"data member {name}: {size:,} bytes, more than any 32x32 image needs ({MAX_MEMBER_BYTES:,})")
    flat = path.is_dir() and any(name.split("/")[0] in ("train", "test") for name, _, _ in entries)
    tops = set() if flat else {name.split("/")[0] for name, _, _ in entries}
    if len(tops) > 1:
        raise ValueError(f"{path}: {len(tops)} top folders ({', '.join(sorted(t + '/' for t in tops)[:5])}); one is expected ({LAYOUT})")
    depth = 0 if flat else 1
    splits: dict[str, list[tuple[str, ...]]] = {"train": [], "test": []}
    seen = set()
    for name, kind, _ in entries:
        if name in seen:
            raise ValueError(f"{path}: member {name} appears twice in the archive (which one is the image?)")
        seen.add(name)
        parts = tuple(name.split("/"))
        rel = parts[depth:]
        ok_dir = kind == "dir" and (
            len(rel) == 0 or (len(rel) == 1 and rel[0] in splits) or (len(rel) == 2 and rel[0] in splits and rel[1] in CLASSES)
        )
        ok_file = kind == "file" and len(rel) == 3 and rel[0] in splits and rel[1] in CLASSES and rel[2].lower().endswith(IMAGE_SUFFIXES)
        if not (ok_dir or ok_file):
            raise ValueError(f"data member {name}: not part of the layout {LAYOUT}")
        if ok_file:
            splits[rel[0]].append(parts)
    return splits


def _whole(names: list[tuple[str, ...]], path: Path, split: str) -> None:
    """Every class present: a data set that is not whole is refused."""
    present = {p[-2] for p in names}
    missing = [c for c in CLASSES if c not in present]
    if missing:
        raise ValueError(f"{path}: the {split} split has no images of class {', '.join(missing)} (every class must be present)")


def _decode_split(
    path: Path, split: str, members: list[tuple[str, ...]], n: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """The split's wanted images and labels (of its `members`, from `_layout`), in sorted-name
    order, and a sha256 of every member of the split (by name), read in one pass, so that no image
    can sit in both splits unnoticed."""
    names = sorted(members)
    if not names:
        raise ValueError(f"{path}: no images under {split}/ (expected {LAYOUT})")
    _whole(names, path, split)
    labels = np.array([CLASSES.index(p[-2]) for p in names], dtype=np.int64)
    keep = _stratified(labels, n, seed)
    wanted = {names[i]: pos for pos, i in enumerate(keep)}
    images = np.zeros((len(keep), *IMAGE_SHAPE), dtype=np.uint8)
    digests = {}

    def take(parts: tuple[str, ...], blob: bytes) -> None:
        digests["/".join(parts)] = hashlib.sha256(blob).hexdigest()
        pos = wanted.get(parts)
        if pos is not None:
            images[pos] = _decode(blob, "/".join(parts))

    if path.is_dir():
        for parts in names:
            take(parts, path.joinpath(*parts).read_bytes())
    else:
        mine = set(names)
        with tarfile.open(path) as tar:  # one sequential pass
            for m in tar:
                parts = tuple(m.name.split("/"))
                if parts in mine:
                    take(parts, tar.extractfile(m).read())
    return images, labels[keep], digests


def _official_split(archive: str, split: str, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = official.read_split(archive, split)
    keep = _stratified(labels, n, seed)
    return images[keep], labels[keep]


def prepare(fetched: dict, subsets: dict[str, int | None], seed: int) -> tuple[dict[str, dict], dict]:
    """Decode each split once. Returns ({split: {"images", "labels"}}, sidecar dict)."""
    origin = {k: v for k, v in fetched.items() if k != "path"}  # a record names its data by file and sha256, not by a path
    splits, meta = {}, {"source": fetched["source"], "origin": origin, "seed": seed, "classes": list(CLASSES), "splits": {}}
    members: dict[str, dict[str, str]] = {}
    path = Path(fetched["path"])
    layout = _archive_read(path, _layout, path) if fetched["source"] == "images" else None  # once for every split
    for split, n in subsets.items():
        if layout is None:
            images, labels = _official_split(fetched["path"], split, n, seed)
        else:
            images, labels, members[split] = _archive_read(path, _decode_split, path, split, layout[split], n, seed)
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # (N, 3, 32, 32) uint8
        y = torch.from_numpy(labels)
        splits[split] = {"images": x, "labels": y}
        meta["splits"][split] = {
            "count": len(y),
            "per_class": np.bincount(labels, minlength=len(CLASSES)).tolist(),
            "subset": n,
            "sha256": sha256_tensors(x, y),
        }
    if len(members) == 2:
        _disjoint(*members.values())
    return splits, meta


def _disjoint(a: dict[str, str], b: dict[str, str]) -> None:
    """No image file in both splits (a test image copied into train would be trained on)."""
    by_digest = {d: name for name, d in a.items()}
    for name, d in b.items():
        if d in by_digest:
            raise ValueError(f"data members {by_digest[d]} and {name}: the same image in both splits (a test image must not be trained on)")


def cached_archive(archive: str | Path, cache: Path) -> dict[str, dict]:
    """Every image of an image-folder archive's train and test splits, decoded once into uint8
    tensors and cached at `cache` (the studies in benchmarks/, which run outside the pipeline)."""
    if cache.is_file():
        return torch.load(cache, weights_only=True)
    splits, _ = prepare(fetch("images", str(archive)), {"train": None, "test": None}, seed=0)
    tmp = cache.with_suffix(".tmp")
    torch.save(splits, tmp)
    tmp.replace(cache)
    return splits


def load_split(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    d = torch.load(path, weights_only=True)
    return d["images"], d["labels"]


# CIFAR-10 channel statistics of the training set (the usual values).
MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float normalised with the CIFAR-10 statistics."""
    return (x.float() / 255.0 - MEAN.to(x.device)) / STD.to(x.device)


def draw_views(n: int, padding: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """The augmentation of n images as data: (n, 3) uint8 rows (dy, dx, flip), drawn from `gen`
    (crop offsets in 0..2*padding, then the flips), so one epoch's views can be stored, shared
    and checked."""
    views = torch.zeros((n, 3), dtype=torch.uint8)
    if padding:
        views[:, :2] = torch.randint(0, 2 * padding + 1, (2, n), generator=gen).T
    if hflip:
        views[:, 2] = torch.rand(n, generator=gen) < 0.5
    return views


def apply_views(x: torch.Tensor, views: torch.Tensor, padding: int) -> torch.Tensor:
    """Random crop with zero padding and horizontal flip of every image of the batch at once
    (one gather, no per-image loop), as `views` (from `draw_views`) say; uint8 in, uint8 out."""
    B, _, H, W = x.shape
    if padding:
        padded = F.pad(x, (padding,) * 4)
        dy, dx = views[:, 0].long(), views[:, 1].long()
        windows = padded.unfold(2, H, 1).unfold(3, W, 1)  # (B, C, 2p+1, 2p+1, H, W), a view
        x = windows[torch.arange(B), :, dy, dx]  # (B, C, H, W): image i's window at (dy_i, dx_i)
    flip = views[:, 2].bool()
    if flip.any():
        x = torch.where(flip.view(B, 1, 1, 1), x.flip(3), x)
    return x


def augment(x: torch.Tensor, padding: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Crop and flip a batch with fresh draws from `gen` (`draw_views`, then `apply_views`)."""
    return apply_views(x, draw_views(len(x), padding, hflip, gen), padding)
