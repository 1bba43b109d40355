"""Training (dyndnn.learn.train): a training job killed in the middle of a stage resumes from its last epoch checkpoint
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
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.recipe import cpu_has_native_bf16, resolve_precision
from dyndnn.learn.technique import Technique, checkpoint, load_technique
from dyndnn.learn.train import fit_stage

EPOCHS = 4
CHILD = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)
from dyndnn.config import TrainConfig
from dyndnn.arch import ModelConfig
from dyndnn.learn.train import train_increment
a = json.loads(sys.argv[1])
train_increment(a["data"], ModelConfig(**a["model"]), TrainConfig(**a["train"]), stage=a["stage"], seed=0,
                out_ckpt=a["out"], out_history=a["out"] + ".csv", previous_ckpt=a["prev"], resume_path=a["resume"], threads=1, device="cpu")
"""


def run_stage(tmp_path, tag, stage, prev=None, kill_after_resume_file=False):
    args = {
        "data": str(tmp_path / "train.pt"),
        "model": {**TINY, "conv_channels": list(TINY["conv_channels"]), "fc_features": list(TINY["fc_features"])},
        "train": {"epochs": EPOCHS, "batch_size": 32, "lr": 0.05, "schedule": "cosine", "distill": 0.0},
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
    monkeypatch.setattr("dyndnn.learn.recipe.cpu_has_native_bf16", lambda *a: False)
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="train.precision is 'bf16'.*no native bf16"):
        resolve_precision("bf16", cpu)
    monkeypatch.setattr("dyndnn.learn.recipe.cpu_has_native_bf16", lambda *a: True)
    assert resolve_precision("auto", cpu) == "bf16" and resolve_precision("fp32", cpu) == "fp32"
    model = GroupedAlexNet(ModelConfig(**TINY))
    x, y = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (32,))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history = fit_stage(
            model, 1, x, y, TrainConfig(epochs=1, batch_size=16, schedule="constant", precision="auto", distill=0.0), seed=0
        )
    finally:
        torch.set_num_threads(threads)
    assert history[-1]["precision"] == "bf16" and history[-1]["channels_last"] is True
    assert history[-1]["threads"] == 1, "the weights depend on the thread count: every epoch names it"
    assert checkpoint(Technique("dynamic", [model], model.cfg), TrainConfig(), 0, history, stage=1)["precision"] == "bf16"


def test_the_stages_share_the_teachers_logits_and_see_the_same_views():
    """The teacher's logits are computed once per epoch of views (teacher_targets) and every
    stage of a seed trains on exactly those views: each epoch's views digest is recorded in the
    stage's history and checked against the targets; targets of other views are refused."""
    from dataclasses import replace

    from dyndnn.learn.slimmable import SlimmableAlexNet
    from dyndnn.learn.train import epoch_views, teacher_targets, views_digest

    torch.manual_seed(0)
    cfg_model = ModelConfig(**TINY)
    teacher = SlimmableAlexNet(cfg_model)
    x = torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (48,))
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05, schedule="constant", precision="fp32", distill=0.5)
    targets = teacher_targets(teacher, x, cfg, views_seed=7, epochs=2)
    assert targets["logits"].shape == (2, 48, 10) and targets["views_sha256"] == [views_digest(epoch_views(48, cfg, 7, e)) for e in (0, 1)]
    assert targets["views_sha256"][0] != targets["views_sha256"][1], "each epoch draws new views"
    torch.manual_seed(0)
    shared, own = GroupedAlexNet(cfg_model), GroupedAlexNet(cfg_model)
    own.load_state_dict(shared.state_dict())
    digests = []
    for k in (1, 2):
        history = fit_stage(shared, k, x, y, cfg, seed=7, targets=targets)
        digests.append([h["views_sha256"] for h in history])
        fit_stage(own, k, x, y, cfg, seed=7, teacher=teacher)  # the same logits, computed in the stage
    assert digests[0] == digests[1] == targets["views_sha256"]
    assert all(torch.equal(a, b) for a, b in zip(shared.state_dict().values(), own.state_dict().values()))
    with pytest.raises(ValueError, match="made for other views"):
        fit_stage(GroupedAlexNet(cfg_model), 1, x, y, cfg, seed=8, targets=targets)
    with pytest.raises(ValueError, match="cover 2 epochs, the recipe trains 3"):
        fit_stage(GroupedAlexNet(cfg_model), 1, x, y, replace(cfg, epochs=3), seed=7, targets=targets)


def test_static_widths_trained_as_separate_jobs_make_the_static_baseline(tmp_path):
    """static_width_job per width, then train_baseline_job puts them together: the same nets as
    training the widths one after the other in one job."""
    from dyndnn.learn.baselines import static_width_job, train_baseline, train_baseline_job

    cfg_model = ModelConfig(groups=2, **{k: v for k, v in TINY.items() if k != "groups"})
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (32,))
    torch.save({"images": x, "labels": y}, tmp_path / "train.pt")
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.05, schedule="constant", precision="fp32", distill=0.0)
    widths = []
    for k in (1, 2):
        widths.append(str(tmp_path / f"w{k}.pt"))
        static_width_job(str(tmp_path / "train.pt"), cfg_model, cfg, 0, k, widths[-1], str(tmp_path / f"w{k}.csv"), device="cpu")
    train_baseline_job("static", str(tmp_path / "train.pt"), cfg_model, cfg, 0, str(tmp_path / "final.pt"), str(tmp_path / "h.csv"),
                       device="cpu", width_ckpts=widths)  # fmt: skip
    combined, raw = load_technique(tmp_path / "final.pt")
    together, history = train_baseline("static", cfg_model, cfg, x, y, seed=0)
    assert [h["width"] for h in raw["history"]] == [h["width"] for h in history] == [1, 2]
    for a, b in zip(combined.nets, together.nets):
        assert all(torch.equal(s, t) for s, t in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="not width 1 of this architecture"):
        train_baseline_job(
            "static", "", cfg_model, cfg, 0, str(tmp_path / "bad.pt"), str(tmp_path / "b.csv"), device="cpu", width_ckpts=widths[::-1]
        )
