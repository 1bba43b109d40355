"""Data sources and preparation: stratified seeded subsets, checksums, both layouts."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dyndnn.learn.data import CLASSES, augment, fetch, prepare, sha256_file


def test_archive_source_stratified_and_deterministic(image_tar, tmp_path):
    fetched = fetch("images", str(image_tar), sha256=sha256_file(image_tar))
    splits, meta = prepare(fetched, {"train": 30, "test": None}, seed=3)
    assert meta["splits"]["train"]["per_class"] == [3] * 10
    assert meta["splits"]["test"]["count"] == 30
    x = splits["train"]["images"]
    assert x.shape == (30, 3, 32, 32) and str(x.dtype) == "torch.uint8"
    again, meta2 = prepare(fetched, {"train": 30}, seed=3)
    assert meta2["splits"]["train"]["sha256"] == meta["splits"]["train"]["sha256"]
    other, meta3 = prepare(fetched, {"train": 30}, seed=4)
    assert meta3["splits"]["train"]["sha256"] != meta["splits"]["train"]["sha256"]


def test_folder_source_equals_archive_source(image_tar, tmp_path):
    with tarfile.open(image_tar) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    a, _ = prepare(fetch("images", str(image_tar)), {"test": None}, seed=0)
    b, _ = prepare(fetch("images", str(tmp_path / "unpacked")), {"test": None}, seed=0)
    assert np.array_equal(a["test"]["images"].numpy(), b["test"]["images"].numpy())


def test_checksum_mismatch_and_missing_path_are_errors(image_tar, tmp_path):
    with pytest.raises(ValueError, match="does not match"):
        fetch("images", str(image_tar), sha256="0" * 64)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fetch("images", str(tmp_path / "absent.tar.gz"))


def test_too_large_subset_is_an_error(image_tar, tmp_path):
    with pytest.raises(ValueError, match="fewer than"):
        prepare(fetch("images", str(image_tar)), {"test": 100}, seed=0)


def test_real_cifar10_subset(cifar_data):
    """The real data (offline archive or official release): class order, balance and decodable real images."""
    fetched = fetch(cifar_data["data.source"], cifar_data["data.path"])
    splits, meta = prepare(fetched, {"test": 100}, seed=0)
    assert meta["splits"]["test"]["per_class"] == [10] * len(CLASSES)
    assert splits["test"]["images"].float().std() > 20  # real photographs, not blank


def test_truncated_archive_names_the_file_and_the_key(image_tar, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(image_tar.read_bytes()[: image_tar.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"data.path .*cut.tar.gz: the archive is corrupt or truncated .*data.sha256"):
        prepare(fetch("images", str(cut)), {"test": None}, seed=0)


def test_batch_augmentation_equals_the_per_image_crop_and_flip():
    """One gather over the batch gives exactly what cropping image by image gave (same draws)."""
    x = torch.randint(0, 256, (33, 3, 32, 32), dtype=torch.uint8)
    got = augment(x, 4, True, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    padded = F.pad(x, (4,) * 4)
    dy, dx = torch.randint(0, 9, (2, 33), generator=gen)
    want = torch.stack([padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32] for i in range(33)])
    flip = torch.rand(33, generator=gen) < 0.5
    want = torch.where(flip.view(33, 1, 1, 1), want.flip(3), want)
    assert got.dtype == torch.uint8 and torch.equal(got, want)


def _add(tar_path, name: str, blob: bytes):
    """A copy of the archive (uncompressed tar) with one more member."""
    import io

    out = tar_path.with_name(tar_path.name.replace(".tar.gz", f"-{len(blob)}.tar"))
    with tarfile.open(tar_path) as src, tarfile.open(out, "w") as dst:
        for m in src:
            dst.addfile(m, src.extractfile(m))
        info = tarfile.TarInfo(name)
        info.size = len(blob)
        dst.addfile(info, io.BytesIO(blob))
    return out


def _jpeg(size: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_data_set_that_is_not_whole_is_refused_naming_the_member(image_tar, tmp_path):
    """Duplicate members, non-images, images of another size, missing classes: each refused
    with the member (or class) named, never trained on."""
    cases = [
        ("fake-cifar/test/cat/0001.jpg", _jpeg(32), r"member fake-cifar/test/cat/0001.jpg appears twice"),
        ("fake-cifar/test/cat/9999.jpg", b"GIF89a not really", r"data member fake-cifar/test/cat/9999.jpg: not a readable image"),
        ("fake-cifar/test/dog/9998.jpg", _jpeg(64), r"data member fake-cifar/test/dog/9998.jpg: 64x64 pixels, CIFAR-10 images are 32x32"),
    ]
    for name, blob, says in cases:
        with pytest.raises(ValueError, match=says):
            prepare(fetch("images", str(_add(image_tar, name, blob))), {"test": None}, seed=0)
    partial = tmp_path / "nine.tar"
    with tarfile.open(image_tar) as src, tarfile.open(partial, "w") as dst:
        for m in src:
            if "/truck/" not in m.name:
                dst.addfile(m, src.extractfile(m))
    with pytest.raises(ValueError, match="the test split has no images of class truck"):
        prepare(fetch("images", str(partial)), {"test": None}, seed=0)


def test_a_link_out_of_the_data_folder_is_not_followed(image_tar, tmp_path):
    with tarfile.open(image_tar) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(_jpeg(32))
    (tmp_path / "unpacked/fake-cifar/test/cat/0000.jpg").unlink()
    (tmp_path / "unpacked/fake-cifar/test/cat/0000.jpg").symlink_to(outside)
    with pytest.raises(ValueError, match=r"data member fake-cifar/test/cat/0000.jpg: a link; the data set takes regular files only"):
        prepare(fetch("images", str(tmp_path / "unpacked")), {"test": None}, seed=0)


def _rebuilt(tar_path, out_name: str, extra=(), rename=None):
    """A copy of the archive (uncompressed tar) with members renamed by `rename` and `extra`
    TarInfo / bytes pairs appended."""
    import io

    out = tar_path.with_name(out_name)
    with tarfile.open(tar_path) as src, tarfile.open(out, "w") as dst:
        for m in src:
            blob = src.extractfile(m).read()
            if rename:
                m.name = rename(m.name)
            dst.addfile(m, io.BytesIO(blob))
        for info, blob in extra:
            dst.addfile(info, io.BytesIO(blob) if blob is not None else None)
    return out


def _png(mode: str, size: int = 32) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (size, size)).save(buf, "PNG")
    return buf.getvalue()


def _link(name: str, target: str, hard: bool = False) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def _file(name: str, blob: bytes) -> tuple:
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    return info, blob


@pytest.mark.parametrize(
    "case, says",
    [
        ("two top folders", r"2 top folders \(backup/, fake-cifar/\); one is expected"),
        ("symlink after the real file", r"data member fake-cifar/train/cat/0000.jpg: a link; the data set takes regular files only"),
        ("hard link", r"data member fake-cifar/train/cat/9000.jpg: a link"),
        ("./ names", r"data member './fake-cifar/.*': not a plain relative path"),
        ("16-bit grey PNG", r"data member fake-cifar/test/cat/9001.png: image mode I;16 is not 8-bit"),
        ("decompression bomb", r"data member fake-cifar/test/cat/9002.png: 10000x10000 pixels, CIFAR-10 images are 32x32"),
        ("a bmp", r"data member fake-cifar/test/cat/9003.bmp: not part of the layout .*ending in .jpg .jpeg .png"),
        ("a readme", r"data member fake-cifar/README.txt: not part of the layout"),
        ("test image in train", r"data members fake-cifar/train/cat/.* and fake-cifar/test/cat/0000.jpg: the same image in both splits"),
    ],
)
def test_archive_members_are_matched_exactly(image_tar, tmp_path, case, says):
    """One canonical path per member, one top folder, regular image files at fixed depths, 8-bit
    images of 32x32 checked from the header, and no image in both splits: each refused naming
    the member, nothing decoded into a data set."""
    with tarfile.open(image_tar) as tar:
        first_test = tar.extractfile("fake-cifar/test/cat/0000.jpg").read()
    arch = {
        "two top folders": lambda: _rebuilt(image_tar, "a.tar", [_file("backup/test/cat/0000.jpg", first_test)]),
        "symlink after the real file": lambda: _rebuilt(image_tar, "a.tar", [_link("fake-cifar/train/cat/0000.jpg", "../dog/0000.jpg")]),
        "hard link": lambda: _rebuilt(
            image_tar, "a.tar", [_link("fake-cifar/train/cat/9000.jpg", "fake-cifar/train/dog/0000.jpg", hard=True)]
        ),
        "./ names": lambda: _rebuilt(image_tar, "a.tar", rename=lambda n: "./" + n),
        "16-bit grey PNG": lambda: _rebuilt(image_tar, "a.tar", [_file("fake-cifar/test/cat/9001.png", _png("I;16"))]),
        "decompression bomb": lambda: _rebuilt(image_tar, "a.tar", [_file("fake-cifar/test/cat/9002.png", _png("1", 10000))]),
        "a bmp": lambda: _rebuilt(image_tar, "a.tar", [_file("fake-cifar/test/cat/9003.bmp", _jpeg(32))]),
        "a readme": lambda: _rebuilt(image_tar, "a.tar", [_file("fake-cifar/README.txt", b"hello")]),
        "test image in train": lambda: _rebuilt(image_tar, "a.tar", [_file("fake-cifar/train/cat/9004.jpg", first_test)]),
    }[case]()
    with pytest.raises(ValueError, match=says):
        prepare(fetch("images", str(arch)), {"train": None, "test": None}, seed=0)


def test_a_checksum_for_a_folder_is_refused_before_any_job(tmp_path):
    from dyndnn.config import ConfigError, _check_data_path

    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="data.sha256 is set but data.path .* is a folder"):
        _check_data_path(tmp_path / "folder", "0" * 64)


def test_a_failed_write_leaves_no_temporary_file_and_says_why(tmp_path, monkeypatch):
    """A full disk while prepare_data (or any job) writes its output: no half-written file, no
    temporary file beside it, and the error says what happened."""
    import errno
    from pathlib import Path

    from dyndnn.learn.technique import save_atomic

    real = Path.write_bytes

    def full(self, data):
        real(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match=r"no space left on the device writing .*train.pt: free some space and rerun"):
        save_atomic({"images": torch.zeros(1000, dtype=torch.uint8)}, tmp_path / "train.pt")
    assert list(tmp_path.iterdir()) == []


def test_an_image_folder_is_tracked_by_content(image_tar, tmp_path):
    """A folder of images is named by its content, as an archive is by its sha256: the same
    files copied later give the same digest (no rerun), one changed image gives another."""
    import os
    import shutil

    from dyndnn.provenance import sha256_tree

    with tarfile.open(image_tar) as tar:
        tar.extractall(tmp_path / "a", filter="data")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    one = tmp_path / "b/fake-cifar/test/cat/0000.jpg"
    os.utime(one, (1, 1))
    assert sha256_tree(tmp_path / "a") == sha256_tree(tmp_path / "b") == fetch("images", str(tmp_path / "a"))["sha256"]
    one.write_bytes(_jpeg(32))
    assert sha256_tree(tmp_path / "b") != sha256_tree(tmp_path / "a")
