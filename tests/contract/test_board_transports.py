"""The board protocol, one suite for every transport: the real runner on real ONNX
files, locally and through OpenSSH against a real sshd on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import tarfile

import pandas as pd
import pytest
import torch
from helpers import TINY, host_bundle, tiny_onnx_models

from dyndnn.boards.board import BoardError
from dyndnn.boards.profiling import profile_board
from dyndnn.learn.model import GroupedAlexNet, ModelConfig

SETTINGS = {"warmup": 2, "min_runs": 15, "min_seconds": 0.05, "seed": 0}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_onnx_models(tmp_path_factory.mktemp("onnx"), groups=(1, 4))


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


def ssh_transport(sshd, **overrides):
    return {"type": "ssh", "host": "127.0.0.1", "port": sshd["port"], "user": sshd["user"], "identity": sshd["identity"],
            "known_hosts": sshd["known_hosts"], "python": sys.executable, "connect_timeout_s": 5, "retries": 2, **overrides}  # fmt: skip


@pytest.fixture(params=["local", "ssh"])
def transport(request):
    if request.param == "local":
        return {"type": "local"}
    return ssh_transport(request.getfixturevalue("sshd"))


def test_measures_every_model_on_every_mapping(models, tmp_path, transport):
    out = tmp_path / "profile" / "testboard"
    out.parent.mkdir()
    summary = profile_board(board(transport=transport), models, SETTINGS, out)
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


def test_torch_runtime_runs_torchscript(tmp_path):
    """Boards without an ONNX Runtime build (32-bit ARM) run the TorchScript export."""
    from dyndnn.learn.export import to_torchscript

    torch.manual_seed(0)
    net = GroupedAlexNet(ModelConfig(**TINY))
    models = []
    for k in (1, 4):
        p = tmp_path / f"g{k}.pt"
        torch.jit.save(to_torchscript(net.materialize(k)), str(p))
        models.append({"label": f"dynamic/g{k}", "path": str(p), "model": "dynamic", "groups": k})
    out = tmp_path / "profile" / "testboard"
    out.parent.mkdir()
    summary = profile_board(board(runtime="torch"), models, SETTINGS, out)
    assert len(summary) == 4 and (summary["p50_ms"] > 0).all()
    facts = json.loads((out / "board.json").read_text())
    assert facts["runtime"] == "torch" and facts["runtime_version"] == torch.__version__


def test_failure_names_board_host_step_and_leaves_nothing(models, tmp_path, transport):
    out = tmp_path / "profile" / "testboard"
    out.parent.mkdir()
    bad = board(transport=transport, mappings={"ghost": {"cpus": [999], "threads": 1}})
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


def remote_workdirs():
    import glob
    import tempfile

    return set(glob.glob(f"{tempfile.gettempdir()}/dyndnn-testboard-*")) | set(glob.glob("/tmp/dyndnn-testboard-*"))


def test_ssh_work_dir_is_removed(models, tmp_path, sshd):
    before = remote_workdirs()
    out = tmp_path / "p" / "testboard"
    out.parent.mkdir()
    profile_board(board(transport=ssh_transport(sshd)), models, SETTINGS, out)
    assert remote_workdirs() == before


def test_ssh_unreachable_board_fails_at_probe(models, tmp_path, sshd):
    from helpers import free_port

    out = tmp_path / "p" / "testboard"
    out.parent.mkdir()
    with pytest.raises(BoardError, match=r"board 'testboard' \(host 127.0.0.1\): probe \(2 attempt\(s\)\) failed: .*(refused|closed)"):
        profile_board(board(transport=ssh_transport(sshd, port=free_port())), models, SETTINGS, out)
    assert list(out.parent.iterdir()) == []


def test_ssh_checks_host_keys(models, tmp_path, sshd):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    out = tmp_path / "p" / "testboard"
    out.parent.mkdir()
    with pytest.raises(BoardError, match="Host key verification failed"):
        profile_board(board(transport=ssh_transport(sshd, known_hosts=str(empty))), models, SETTINGS, out)


def test_bundle_carries_runtime_runner_and_models_and_is_what_the_board_runs(tmp_path, models, transport):
    """The bundle path of profile_board on both transports (a bundle for this host: no downloads)."""
    b, tar, manifest = host_bundle(tmp_path, models, board(transport=transport))
    with tarfile.open(tar) as t:
        names = set(t.getnames())
    expected = ["run.sh", "runner.py", "power.py", "dvfs.py", "bundle.json", "models/dynamic_g1.onnx", "models/dynamic_g4.onnx"]
    assert {f"bundle/{name}" for name in expected} <= names
    assert manifest["bundle_bytes"] == tar.stat().st_size and set(manifest["models"]) == {"dynamic/g1", "dynamic/g4"}
    out = tmp_path / "profile" / "testboard"
    out.parent.mkdir()
    summary = profile_board(b, models, SETTINGS, out, bundle=tar)
    assert sorted(p.name for p in out.iterdir()) == ["board.json", "plan.json", "samples.csv", "summary.csv"]
    facts = json.loads((out / "board.json").read_text())
    assert len(summary) == 2 * len(b["mappings"]) and facts["bundle"]["source"] == "pypi"
    assert set(facts["parity_max_abs_diff"]) == {"dynamic/g1", "dynamic/g4"} and max(facts["parity_max_abs_diff"].values()) <= 1e-4
