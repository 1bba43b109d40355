"""A training job killed in the middle of a stage resumes from its last epoch checkpoint
and ends with exactly the weights of an uninterrupted run (CPU, fixed seeds, 1 thread)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import torch
from helpers import TINY

from dyndnn.technique import load_technique

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
