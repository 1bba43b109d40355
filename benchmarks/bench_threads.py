"""Both cores: one training job with 2 threads against two jobs side by side with 1 thread each.

For a few training jobs of the main job's architecture (dynamic stage 1 and stage G, a
static width, the slimmable network) measures, in this run, images/s of the package's
training epoch (`bench_train.images_per_s`, chosen precision + layout) in (a) one process
with `--threads` threads, and (b) `--threads` processes at once with 1 thread each (their
summed images/s). Ratio (b)/(a) > 1 means running independent jobs side by side finishes
the same work sooner than giving one job every core.

    python benchmarks/bench_threads.py [--config config/config.yaml] [--images 6400] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from bench_train import images_per_s
from dataclasses import replace
from dyndnn.config import TrainConfig, from_block
from dyndnn.learn.baselines import slimmable_loss
from dyndnn.learn.model import GroupedAlexNet, ModelConfig
from dyndnn.learn.slimmable import SlimmableAlexNet, width_config
from dyndnn.schema import read_yaml
config, job, k, images, threads = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
c = read_yaml(config)
cfg = from_block(ModelConfig, c["model"])
train = replace(from_block(TrainConfig, c["train"]), distill=0.0)
g = torch.Generator().manual_seed(0)
x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=g)
y = torch.randint(0, 10, (images,), generator=g)
torch.manual_seed(0)
kw = {}
if job == "static":
    net = SlimmableAlexNet(width_config(cfg, k)); params = list(net.parameters())
elif job == "slimmable":
    net = SlimmableAlexNet(cfg, switchable_bn=True); params = list(net.parameters()); kw = {"loss_fn": slimmable_loss}
else:
    net = GroupedAlexNet(cfg).train(); params = net.prepare_stage(k)
print(json.dumps(images_per_s(net, params, x, y, train, **kw)))
"""


def run(config, job, k, images, threads, copies):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(HERE), config, job, str(k), str(images), str(threads)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(copies)
    ]
    results = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker {job} k={k} failed:\n{err}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--images", type=int, default=25 * 256, help="per point: 5 warm-up batches, the rest timed")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print(
        f"# bench_threads: {args.config}, {args.images} images per point; 1 job x {args.threads} threads vs {args.threads} jobs x 1 thread"
    )
    print(f"{'job':<20} {'1x' + str(args.threads) + ' img/s':>12} {str(args.threads) + 'x1 img/s (sum)':>18} {'ratio':>6}")
    for label, job, k in [
        ("dynamic stage 1", "dynamic", 1),
        ("dynamic stage 4", "dynamic", 4),
        ("static 50 %", "static", 2),
        ("static 100 %", "static", 4),
        ("slimmable", "slimmable", 4),
    ]:
        one = run(args.config, job, k, args.images, args.threads, 1)[0]
        many = sum(run(args.config, job, k, args.images, 1, args.threads))
        print(f"{label:<20} {one:>12.1f} {many:>18.1f} {many / one:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
