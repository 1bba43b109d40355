"""The official-download path without the internet: a local HTTP server serves a CIFAR-10
python-release archive (pickled batches built from real images, with its MD5), and the data
source `torchvision` fetches it through the same code as the real download (only the URL and
MD5 differ). Checked: the images come out exactly as they went in, the per-user cache serves a
second clone without a request, and a wrong MD5, a dropped connection, no server, a damaged cache
and a hostile pickle are refused or repaired with nothing half-written left behind."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest
import torch

from dyndnn.learn import official
from dyndnn.learn.data import CLASSES, fetch, prepare

PER_CLASS = {"train": 10, "test": 4}  # images per class and split taken from the real data


def _batch(images: np.ndarray, labels: np.ndarray, name: str) -> bytes:
    """A batch as the release pickles it: rows of 3,072 bytes (R, G, B planes), labels as a list."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps(
        {"batch_label": name, "labels": labels.tolist(), "data": data, "filenames": [f"{i}.png" for i in range(len(images))]}
    )


def _add(tar: tarfile.TarFile, name: str, blob: bytes) -> None:
    info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


@pytest.fixture(scope="module")
def release_archive(cifar_data, tmp_path_factory) -> dict:
    """A python-release archive of real CIFAR-10 images: the train images spread over the five
    data batches, the test images in test_batch; returns its bytes, MD5 and the images."""
    fetched = fetch(cifar_data["data.source"], cifar_data["data.path"])
    splits, _ = prepare(fetched, {split: n * len(CLASSES) for split, n in PER_CLASS.items()}, seed=0)
    hwc = {s: (v["images"].permute(0, 2, 3, 1).numpy(), v["labels"].numpy()) for s, v in splits.items()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        x, y = hwc["train"]
        for i, part in enumerate(np.array_split(np.arange(len(y)), 5), start=1):
            _add(tar, f"data_batch_{i}", _batch(x[part], y[part], f"training batch {i} of 5"))
        _add(tar, "test_batch", _batch(*hwc["test"], "testing batch 1 of 1"))
        _add(tar, "batches.meta", pickle.dumps({"label_names": list(CLASSES), "num_vis": 3072}))
    blob = buf.getvalue()
    return {"bytes": blob, "md5": hashlib.md5(blob).hexdigest(), "splits": hwc}


class Server:
    """One archive on 127.0.0.1; `mode` "ok" serves it, "drop" sends half and closes the connection."""

    def __init__(self, blob: bytes):
        self.blob, self.mode, self.requests = blob, "ok", 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(outer.blob)))
                self.end_headers()
                self.wfile.write(outer.blob if outer.mode == "ok" else outer.blob[: len(outer.blob) // 2])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(release_archive):
    s = Server(release_archive["bytes"])
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def local_release(server, release_archive, monkeypatch):
    """The data source `torchvision` pointed at the local server (URL and MD5 only)."""
    release = official.OfficialRelease(server.url, "cifar-10-python.tar.gz", release_archive["md5"])
    monkeypatch.setattr(official, "official_release", lambda: release)
    return release


def _left(cache) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_download_is_md5_checked_cached_once_per_user_and_read_exactly(local_release, server, release_archive, tmp_path, monkeypatch):
    cache = tmp_path / "user-cache"
    monkeypatch.setenv(official.CACHE_ENV, str(cache))
    fetched = fetch("torchvision")
    assert server.requests == 1 and _left(cache) == ["cifar10/cifar-10-python.tar.gz"]
    assert fetched["file"] == "cifar-10-python.tar.gz" and fetched["sha256"] == hashlib.sha256(release_archive["bytes"]).hexdigest()
    splits, meta = prepare(fetched, {"train": None, "test": None}, seed=0)
    for split, (x, y) in release_archive["splits"].items():  # lossless: the pixels and labels that went in
        assert torch.equal(splits[split]["images"], torch.from_numpy(x).permute(0, 3, 1, 2))
        assert torch.equal(splits[split]["labels"], torch.from_numpy(y))
        assert meta["splits"][split]["per_class"] == [PER_CLASS[split]] * len(CLASSES)
    assert "path" not in meta["origin"]  # a record names its data by file and sha256 only
    again = fetch("torchvision")  # a second clone of the same user: no second download
    assert server.requests == 1 and again == fetched


def test_a_wrong_md5_is_refused_and_nothing_is_cached(local_release, server, tmp_path):
    wrong = official.OfficialRelease(local_release.url, local_release.filename, "0" * 32)
    with pytest.raises(official.DownloadError, match="does not match the published 0{32}.*nothing was cached"):
        official.download(wrong, tmp_path)
    assert server.requests == 1 and _left(tmp_path) == []


def test_an_interrupted_download_leaves_nothing_and_the_next_try_completes(local_release, server, tmp_path):
    server.mode = "drop"
    with pytest.raises(official.DownloadError, match=r"closed after \d+ of \d+ bytes|IncompleteRead"):
        official.download(local_release, tmp_path)
    assert _left(tmp_path) == []
    server.mode = "ok"
    assert official.download(local_release, tmp_path) == official.cached(local_release, tmp_path)
    assert server.requests == 2


def test_a_damaged_cached_copy_is_downloaded_again(local_release, server, tmp_path):
    target = official.download(local_release, tmp_path)
    target.write_bytes(target.read_bytes()[:1000])
    assert official.cached(local_release, tmp_path) is None
    official.download(local_release, tmp_path, log=lambda _: None)
    assert server.requests == 2 and official.cached(local_release, tmp_path) == target


def test_no_server_says_how_to_run_offline(local_release, server, tmp_path):
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(official.DownloadError, match=r"could not download CIFAR-10 .*make quick DATA=<archive.tar.gz>"):
        official.download(local_release, tmp_path)
    assert _left(tmp_path) == []


def test_a_batch_that_would_run_code_is_refused(tmp_path):
    """The archive comes from the network: its pickles may hold only data."""

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "test_batch", pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(pickle.UnpicklingError, match="does not hold builtins.print"):
        official.read_split(archive, "test")
