"""Training (dyndnn.train): a training job killed in the middle of a stage resumes from its last epoch checkpoint
and ends with exactly the weights of an uninterrupted run (CPU, fixed seeds, 1 thread)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import TINY

from dyndnn.arch import ModelConfig
from dyndnn.config import TrainConfig
from dyndnn.model import GroupedAlexNet
from dyndnn.technique import Technique, checkpoint, load_technique
from dyndnn.train import cpu_has_native_bf16, fit_stage, resolve_precision

EPOCHS = 4
CHILD = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)
from dyndnn.config import TrainConfig
from dyndnn.arch import ModelConfig
from dyndnn.train import train_increment
a = json.loads(sys.argv[1])
train_increment(a["data"], ModelConfig(**a["model"]), TrainConfig(**a["train"]), stage=a["stage"], seed=0,
                out_ckpt=a["out"], out_history=a["out"] + ".csv", previous_ckpt=a["prev"], resume_path=a["resume"], threads=1, device="cpu")
"""


def run_stage(tmp_path, tag, stage, prev=None, kill_after_resume_file=False):
    args = {
        "data": str(tmp_path / "train.pt"),
        "model": {**TINY, "conv_channels": list(TINY["conv_channels"]), "fc_features": list(TINY["fc_features"])},
        "train": {"epochs": EPOCHS, "batch_size": 32, "lr": 0.05, "schedule": "cosine"},
        "stage": stage,
        "out": str(tmp_path / f"{tag}-stage{stage}.pt"),
        "prev": prev,
        "resume": str(tmp_path / f"{tag}-resume{stage}.pt"),
    }
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stderr=subprocess.PIPE, text=True)
    if kill_after_resume_file:
        deadline = time.monotonic() + 120
        while not (tmp_path / f"{tag}-resume{stage}.pt").exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)  # into the next epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
        assert not (tmp_path / f"{tag}-stage{stage}.pt").exists()
        return run_stage(tmp_path, tag, stage, prev)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return args["out"], err


def test_killed_stage_resumes_to_identical_weights(tmp_path):
    torch.manual_seed(0)
    torch.save(
        {"images": torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8), "labels": torch.randint(0, 10, (256,))},
        tmp_path / "train.pt",
    )
    ref1, _ = run_stage(tmp_path, "ref", 1)
    ref2, _ = run_stage(tmp_path, "ref", 2, prev=ref1)
    killed2, log = run_stage(tmp_path, "killed", 2, prev=ref1, kill_after_resume_file=True)
    assert "resumed after epoch" in log
    (a, _), (b, ckpt_b) = load_technique(ref2), load_technique(killed2)
    for (name, ta), tb in zip(a.nets[0].state_dict().items(), b.nets[0].state_dict().values()):
        assert torch.equal(ta, tb), f"{name} differs after resume"
    assert [h["epoch"] for h in ckpt_b["history"]] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert not (tmp_path / "killed-resume2.pt").exists(), "the resume checkpoint is removed once the stage is done"


def test_precision_is_detected_recorded_and_refused_where_not_native(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu_has_native_bf16(str(cpuinfo))
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(str(cpuinfo))
    cpu = torch.device("cpu")
    monkeypatch.setattr("dyndnn.train.cpu_has_native_bf16", lambda *a: False)
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="train.precision is 'bf16'.*no native bf16"):
        resolve_precision("bf16", cpu)
    monkeypatch.setattr("dyndnn.train.cpu_has_native_bf16", lambda *a: True)
    assert resolve_precision("auto", cpu) == "bf16" and resolve_precision("fp32", cpu) == "fp32"
    model = GroupedAlexNet(ModelConfig(**TINY))
    x, y = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (32,))
    history = fit_stage(model, 1, x, y, TrainConfig(epochs=1, batch_size=16, schedule="constant", precision="auto"), seed=0)
    assert history[-1]["precision"] == "bf16" and history[-1]["channels_last"] is True
    assert checkpoint(Technique("dynamic", [model], model.cfg), TrainConfig(), 0, history, stage=1)["precision"] == "bf16"
