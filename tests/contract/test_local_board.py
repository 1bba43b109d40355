"""The board protocol on the local transport: a real runner run on real ONNX files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from dyndnn.boards import BoardError, profile_board
from dyndnn.export import to_onnx_bytes
from dyndnn.model import GroupedAlexNet, ModelConfig

from conftest import TINY

SETTINGS = {"warmup": 2, "min_runs": 15, "min_seconds": 0.05, "seed": 0}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    net = GroupedAlexNet(ModelConfig(**TINY))
    out = []
    for k in (1, 4):
        p = d / f"g{k}.onnx"
        p.write_bytes(to_onnx_bytes(net.materialize(k), 13, 7))
        out.append({"label": f"dynamic/g{k}", "path": str(p), "model": "dynamic", "groups": k})
    return out


def board(**overrides):
    b = {
        "name": "testboard",
        "transport": {"type": "local"},
        "runtime": "onnxruntime",
        "mappings": {"one-core": {"cpus": [0], "threads": 1}, "all-cores": {"cpus": "all", "threads": "cpus"}},
        "power": {"backend": "rapl", "rate_hz": 20, "required": False},
    }
    b.update(overrides)
    return b


def test_measures_every_model_on_every_mapping(models, tmp_path):
    out = tmp_path / "profile" / "testboard"
    out.parent.mkdir()
    summary = profile_board(board(), models, SETTINGS, out)
    assert sorted(summary.groupby(["mapping", "groups"]).size().index) == [(m, k) for m in ("all-cores", "one-core") for k in (1, 4)]
    assert (summary["n"] >= SETTINGS["min_runs"]).all()
    assert (summary["p50_ms"] > 0).all() and (summary["p99_ms"] >= summary["p50_ms"]).all()
    samples = pd.read_csv(out / "samples.csv")
    assert len(samples) == summary["n"].sum() and set(samples["board"]) == {"testboard"}
    facts = json.loads((out / "board.json").read_text())
    assert facts["runtime"] == "onnxruntime" and facts["dvfs"] == "fixed"
    assert facts["power_backend"] in ("rapl", "none") and (facts["power_backend"] == "rapl" or facts["power_note"])
    assert sorted(p.name for p in out.iterdir()) == ["board.json", "plan.json", "samples.csv", "summary.csv"]
    assert not list(out.parent.glob(".staging-*"))


def test_failure_names_board_host_step_and_leaves_nothing(models, tmp_path):
    out = tmp_path / "profile" / "testboard"
    out.parent.mkdir()
    bad = board(mappings={"ghost": {"cpus": [999], "threads": 1}})
    with pytest.raises(BoardError, match=r"board 'testboard' \(host .*\): run failed: .*CPUs \[999\]"):
        profile_board(bad, models, SETTINGS, out)
    assert list(out.parent.iterdir()) == []


def test_required_power_backend_that_is_absent_fails(models, tmp_path):
    out = tmp_path / "p" / "testboard"
    out.parent.mkdir()
    b = board(power={"backend": "rapl", "rate_hz": 20, "required": True}, sysfs_root=str(tmp_path / "empty-sysfs"))
    with pytest.raises(BoardError, match="no RAPL domain"):
        profile_board(b, models, SETTINGS, out)


def test_unknown_transport(models, tmp_path):
    with pytest.raises(BoardError, match="transport 'carrier-pigeon' is not available"):
        profile_board(board(transport={"type": "carrier-pigeon"}), models, SETTINGS, tmp_path / "x")
