"""The pipeline through Snakemake's SLURM executor plugin and profiles/slurm, on a real
single-node SLURM cluster (see conftest.py), against a local run with the same seeds."""

from __future__ import annotations

import json
import subprocess
import time

import pandas as pd
import pytest
import torch
from helpers import REPO, job_counts, snakemake

PROFILE = str(REPO / "profiles" / "slurm")
# What this 2-core test node can hold; the profile's own values are for a real cluster
# (the dry-run test below checks them). Same thread count as the local run, so the
# results can be compared bit for bit.
FIT_THIS_NODE = [
    "--set-threads",
    "train_increment=2",
    "evaluate=1",
    "export=1",
    "--set-resources",
    "train_increment:cpus_per_task=2",
    "train_increment:mem_mb=2000",
    "train_increment:runtime=30",
    "evaluate:mem_mb=1500",
    "export:mem_mb=1500",
    "--default-resources",
    "mem_mb=1000",
    "runtime=30",
    "cpus_per_task=1",
    "--slurm-status-command",
    "squeue",  # no accounting database on the test cluster
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "2",
]
TARGETS = ["results/eval/seed0/dynamic.csv", "results/onnx/dynamic/g4.onnx"]


def test_dry_run_lists_training_jobs_with_their_cluster_resources(tmp_path):
    proc = snakemake(tmp_path, "-n", "--profile", PROFILE, cores=None)  # a cluster run gives no --cores
    out = proc.stdout + proc.stderr
    assert job_counts(out)["train_increment"] == 4
    block = out.split("rule train_increment:", 1)[1].split("\n\n", 1)[0]
    assert "cpus_per_task=8" in block and "mem_mb=16000" in block and "runtime=240" in block


@pytest.mark.slurm
@pytest.mark.slow
def test_quick_config_trains_through_sbatch_and_matches_a_local_run(slurm_cluster, quick_run, tmp_path, monkeypatch):
    local_dir, cfg, _ = quick_run
    for name, value in slurm_cluster["env"].items():
        monkeypatch.setenv(name, value)
    t0 = time.perf_counter()
    snakemake(tmp_path, "--profile", PROFILE, "--configfile", str(cfg), *FIT_THIS_NODE, *TARGETS)
    wall_s = time.perf_counter() - t0
    # The same jobs in the local run, one after another (benchmark files: wall seconds per job).
    local_s = sum(
        float(f.read_text().splitlines()[1].split()[0])
        for f in (local_dir / "results/benchmarks").rglob("*.tsv")
        if "train_increment" in f.parts or ("export" in f.parts and f.stem == "dynamic")
    )
    timing = {"slurm_wall_s": round(wall_s, 1), "local_train_and_export_s": round(local_s, 1)}
    print("SLURM timing:", json.dumps(timing))
    (tmp_path / "timing.json").write_text(json.dumps(timing))

    # The cluster's own records: every training stage, the evaluation and the export ran as batch jobs.
    proc = subprocess.run(
        ["squeue", "-t", "all", "-h", "-o", "%i|%T|%k"], env=slurm_cluster["env"], capture_output=True, text=True, check=True
    )
    jobs = [line.split("|", 2) for line in proc.stdout.splitlines()]
    by_rule = {}
    for _, state, comment in jobs:
        by_rule.setdefault(comment.split("_wildcards")[0], []).append(state)
    assert by_rule.get("rule_train_increment") == ["COMPLETED"] * 4, jobs
    assert by_rule.get("rule_evaluate") == ["COMPLETED"] and by_rule.get("rule_export") == ["COMPLETED"], jobs
    assert not any("prepare_data" in c or "download_data" in c for _, _, c in jobs), "data rules must stay on the submit host"
    ctld_log = (slurm_cluster["root"] / "log" / "slurmctld.log").read_text()
    assert ctld_log.count("_slurm_rpc_submit_batch_job") >= 6

    # Same seeds, same thread count: the same weights and the same evaluation as the local run.
    for k in range(1, 5):
        ours = torch.load(tmp_path / f"results/models/dynamic/seed0/stage{k}.pt", weights_only=False)["state_dicts"][0]
        local = torch.load(local_dir / f"results/models/dynamic/seed0/stage{k}.pt", weights_only=False)["state_dicts"][0]
        assert ours.keys() == local.keys()
        assert all(torch.equal(ours[n], local[n]) for n in ours), f"stage {k} weights differ from the local run"
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / TARGETS[0]), pd.read_csv(local_dir / TARGETS[0]))
