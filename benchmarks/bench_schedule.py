"""The main job's training phase, scheduled two ways: every training job with all the cores, one
after another, against the workflow's default (two jobs side by side, half the cores each, the
dynamic DNN's chain first when there are baselines to train beside it).

Runs the real workflow (every technique's trained model as the target) on the default config with a
subset of the real images and fewer epochs, in two fresh folders, and prints each one's wall
time of the training phase (the data jobs run first, untimed) and their ratio. The jobs and their
work are the same in both; only threads and order differ.

    python benchmarks/bench_schedule.py --data <cifar10 image-folder archive.tar.gz> [--images 10000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TRAINING = ["train_static_width", "train_baseline", "teacher_targets", "train_increment"]
TRAINED = [f"results/models/{m}/seed0/final.pt" for m in ("static", "slimmable", "truncated", "pruned")] + [
    "results/models/dynamic/seed0/stage4.pt"
]  # the last model of every technique: the training phase


def snakemake(workdir: Path, cores: int, *args: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", str(cores), "--quiet", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def job_walls(workdir: Path) -> dict[str, float]:
    walls = {}
    for tsv in sorted((workdir / "results/benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(workdir / "results/benchmarks").parts[0]
        if rule in TRAINING:
            with tsv.open() as f:
                walls[str(tsv.relative_to(workdir / "results/benchmarks").with_suffix(""))] = float(
                    next(csv.DictReader(f, delimiter="\t"))["s"]
                )
    return walls


def phase(config: Path, cores: int, set_threads: list[str]) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench_schedule-") as tmp:
        work = Path(tmp)
        snakemake(work, cores, f"--configfile={config}", "results/data/train.pt")  # --configfile takes every word after it
        t0 = time.perf_counter()
        snakemake(work, cores, f"--configfile={config}", *TRAINED, *set_threads)
        return time.perf_counter() - t0, job_walls(work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="the CIFAR-10 JPEG archive (an image-folder .tar.gz)")
    ap.add_argument("--config", default=REPO / "config/config.yaml", type=Path)
    ap.add_argument("--images", type=int, default=10000, help="training images (a stratified subset)")
    ap.add_argument("--epochs", type=int, default=1, help="per stage and per baseline; pruned fine-tunes for 1")
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    args = ap.parse_args()
    config = yaml.safe_load(args.config.read_text())
    config["data"].update(source="images", path=str(args.data.resolve()), train_subset=args.images, test_subset=1000)
    config["train"]["epochs"] = args.epochs
    config["baselines"]["pruned"]["finetune_epochs"] = 1
    every_core = ["--set-threads", *(f"{rule}={args.cores}" for rule in TRAINING)]
    print(
        f"# bench_schedule: {args.config.name}, {args.images} images, {args.epochs} epoch(s), {args.cores} cores, {platform.processor() or platform.machine()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_schedule-config-") as tmp:
        run_config = Path(tmp) / "config.yaml"
        run_config.write_text(yaml.safe_dump(config))
        serial, serial_jobs = phase(run_config, args.cores, every_core)
        side, side_jobs = phase(run_config, args.cores, [])
    print(f"{'job':<42} {'all cores s':>12} {'side by side s':>15}")
    for job in serial_jobs:
        print(f"{job:<42} {serial_jobs[job]:>12.1f} {side_jobs.get(job, float('nan')):>15.1f}")
    print(f"{'training phase (wall)':<42} {serial:>12.1f} {side:>15.1f}")
    print(
        f"side by side finishes the training phase {serial / side:.2f}x as fast (sum of job walls: {sum(serial_jobs.values()):.0f} s vs {sum(side_jobs.values()):.0f} s)"
    )


if __name__ == "__main__":
    main()
