"""The boards' runtime bundles, built from real packages and run under user-mode emulation.

Both bundles are built from the shipped board configs (config/boards/odroid-xu3.yaml,
jetson-nano.yaml): downloads are cached by the hash of the package list (~/.cache/dyndnn,
or $DYNDNN_CACHE). The real runner then measures the quick pipeline's exported
sub-networks through profile_board, with `qemu-arm-static` / `qemu-aarch64-static`
prefixing the bundle's interpreter (no binfmt, no chroot); profile_board checks the
board's outputs against this host's ONNX Runtime (1e-4) and validates the result files.

The Nano's real bundle is for its Python 3.6 and is checked as built (cp36 aarch64 wheels).
No reachable Debian release ships Python 3.6 for arm64, so the emulated Nano run uses
the same ONNX Runtime release (1.10.0) built for Python 3.9, on Debian 11's Python 3.9;
Python 3.6 compatibility of the runner itself is checked by vermin (tests/unit).
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
import urllib.request

import pytest
from helpers import REPO

from dyndnn.boards.board import load_board
from dyndnn.boards.bundle import build_bundle, build_runtime
from dyndnn.boards.packages import DEFAULT_MIRROR, BundleSpec
from dyndnn.boards.profiling import models_from_paths, profile_board, runner_files

pytestmark = [pytest.mark.emulation, pytest.mark.slow]

SETTINGS = {"warmup": 0, "min_runs": 2, "min_seconds": 0.0, "seed": 0, "parity_images": 1, "parity_atol": 1e-4}  # emulation is ~100x slower
ELF_MACHINE = {"armhf": 40, "arm64": 183}  # e_machine: EM_ARM, EM_AARCH64


@pytest.fixture(scope="module")
def registries():
    """Skip (saying why) when Debian's archive or PyPI cannot be reached."""
    for url in (f"{DEFAULT_MIRROR}/dists/trixie/InRelease", "https://pypi.org/simple/onnxruntime/"):
        try:
            with urllib.request.urlopen(url, timeout=20) as r:
                r.read(1)
        except OSError as e:
            pytest.skip(f"package registry unreachable ({url}: {e}); the ARM bundles need Debian's archive and PyPI")


def qemu(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} not installed (Debian package qemu-user-static; .ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def exported(quick_run):
    workdir, _, proc = quick_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = sorted((workdir / "results/onnx/dynamic").glob("g*.onnx"))
    assert len(paths) == 4
    return models_from_paths(paths)


def emulated(name: str, tmp_path, mappings: dict) -> dict:
    """The shipped board config, reached locally, without its sensors and DVFS (which qemu-user cannot give)."""
    board = load_board(REPO / f"config/boards/{name}.yaml", REPO / "workflow/schemas/board.schema.yaml")
    return {
        **board,
        "transport": {"type": "local"},
        "mappings": mappings,
        "power": {"backend": "none", "rate_hz": 20},
        "dvfs": {},
        "lock": str(tmp_path / "lock"),
    }


def elf_machine(tar_path, member: str) -> int:
    with tarfile.open(tar_path) as t:
        head = t.extractfile(member).read(20)
    assert head[:4] == b"\x7fELF"
    return int.from_bytes(head[18:20], "little")


def measure(board, models, bundle, tmp_path, name):
    out = tmp_path / "profile" / name
    out.parent.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    summary = profile_board(board, models, SETTINGS, out, bundle=bundle)
    return summary, json.loads((out / "board.json").read_text()), time.perf_counter() - t0


def test_xu3_bundle_runs_under_qemu_arm(registries, exported, tmp_path, monkeypatch):
    board = emulated("odroid-xu3", tmp_path, {"A15-1core": {"cpus": [0], "threads": 1}})
    t0 = time.perf_counter()
    manifest = build_bundle(board, exported, runner_files(), tmp_path / "b/bundle.tar.gz", tmp_path / "b/bundle.json")
    build_s = time.perf_counter() - t0
    packages = {p["package"]: p["version"] for p in manifest["runtime"]["packages"]}
    assert manifest["runtime"]["arch"] == "armhf" and "python3-onnxruntime" in packages and "python3.13" in packages
    assert elf_machine(tmp_path / "b/bundle.tar.gz", "bundle/root/usr/bin/python3.13") == ELF_MACHINE["armhf"]

    monkeypatch.setenv("DYNDNN_EMULATOR", qemu("qemu-arm-static"))
    summary, facts, run_s = measure(board, exported, tmp_path / "b/bundle.tar.gz", tmp_path, "odroid-xu3")
    assert facts["machine"] == "armv7l" and facts["python"].startswith("3.13")
    assert packages["python3-onnxruntime"].startswith(facts["runtime_version"])  # Debian's build says "1.21"
    assert len(summary) == 4 and (summary["n"] >= SETTINGS["min_runs"]).all()
    assert sorted(facts["parity_max_abs_diff"]) == [m["label"] for m in exported]
    assert max(facts["parity_max_abs_diff"].values()) <= 1e-4
    print(f"\nXU3 bundle: {manifest['bundle_bytes'] / 1e6:.1f} MB ({manifest['runtime_bytes'] / 1e6:.1f} MB runtime unpacked), built in {build_s:.1f} s;"
          f" emulated profile run {run_s:.1f} s; p50 ms {summary.sort_values('groups')['p50_ms'].round(2).tolist()}; parity {max(facts['parity_max_abs_diff'].values()):.2e}")  # fmt: skip


def test_nano_bundle_for_python36_and_its_runtime_under_qemu_aarch64(registries, exported, tmp_path, monkeypatch):
    mappings = {"A57-1core": {"cpus": [0], "threads": 1}, "GPU": {"cpus": [0], "threads": 1, "device": "gpu", "runtime": "tensorrt"}}
    board = emulated("jetson-nano", tmp_path, mappings)
    t0 = time.perf_counter()
    manifest = build_bundle(board, exported, runner_files(), tmp_path / "b36/bundle.tar.gz", tmp_path / "b36/bundle.json")
    build_s = time.perf_counter() - t0
    wheels = [w["file"] for w in manifest["runtime"]["wheels"]]
    assert "onnxruntime-1.10.0-cp36-cp36m-manylinux_2_17_aarch64.manylinux2014_aarch64.whl" in wheels
    assert "numpy-1.19.5-cp36-cp36m-manylinux2014_aarch64.whl" in wheels
    with tarfile.open(tmp_path / "b36/bundle.tar.gz") as t:
        ext = [n for n in t.getnames() if n.startswith("bundle/site/onnxruntime/capi/onnxruntime_pybind11_state")]
    assert ext == ["bundle/site/onnxruntime/capi/onnxruntime_pybind11_state.cpython-36m-aarch64-linux-gnu.so"]
    assert elf_machine(tmp_path / "b36/bundle.tar.gz", ext[0]) == ELF_MACHINE["arm64"]

    # emulated: the same ONNX Runtime release for Python 3.9, the board's "own" interpreter from Debian 11
    board39 = {**board, "bundle": {**board["bundle"], "python": "3.9"}}
    build_bundle(board39, exported, runner_files(), tmp_path / "b39/bundle.tar.gz", tmp_path / "b39/bundle.json")
    interpreter = build_runtime(BundleSpec(arch="arm64", python="3.9", source="debian", suite="bullseye", packages=("python3.9",))) / "root"
    monkeypatch.setenv("DYNDNN_EMULATOR", f"{qemu('qemu-aarch64-static')} -L {interpreter}")
    monkeypatch.setenv("DYNDNN_PYTHON", str(interpreter / "usr/bin/python3.9"))
    summary, facts, run_s = measure(board39, exported, tmp_path / "b39/bundle.tar.gz", tmp_path, "jetson-nano")
    assert facts["machine"] == "aarch64" and facts["python"].startswith("3.9") and facts["runtime_version"] == "1.10.0"
    assert set(summary["mapping"]) == {"A57-1core"} and len(summary) == 4  # no TensorRT here: the GPU mapping says so
    assert facts["tensorrt"].startswith("unavailable") and "mapping GPU not measured" in facts["skipped_note"]
    assert max(facts["parity_max_abs_diff"].values()) <= 1e-4
    print(f"\nNano bundle (cp36): {manifest['bundle_bytes'] / 1e6:.1f} MB ({manifest['runtime_bytes'] / 1e6:.1f} MB runtime unpacked), built in {build_s:.1f} s;"
          f" emulated profile run (cp39) {run_s:.1f} s; p50 ms {summary.sort_values('groups')['p50_ms'].round(2).tolist()}; parity {max(facts['parity_max_abs_diff'].values()):.2e}")  # fmt: skip
