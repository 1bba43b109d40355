# Config loading and validation (before any job runs), wildcard constraints,
# target-list functions. Nothing else.
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import dyndnn.config
from dyndnn.boards import load_board
from dyndnn.figures import FIGURES

BASE = Path(workflow.basedir)
validate(config, "../schemas/config.schema.yaml")
try:
    CFG = dyndnn.config.load(config, boards_dir=BASE / "config/boards")
    BOARDS = {
        b: load_board(BASE / f"config/boards/{b}.yaml", BASE / "workflow/schemas/board.schema.yaml")
        for b in CFG.boards
    }
except ValueError as e:
    raise WorkflowError(f"Invalid configuration: {e}")

G = CFG.model.groups
BASELINES = list(CFG.baselines)
MODELS = ["dynamic", *BASELINES]
REPORT_TEMPLATE = str(BASE / "report/templates/report.html.j2")
CLAIMS = str(BASE / "config/claims.yaml")


wildcard_constraints:
    model="|".join(MODELS),
    baseline="|".join(BASELINES) or "no-baseline-enabled",
    k=r"[1-9][0-9]*",
    board="|".join(BOARDS),


def previous_stage(wildcards):
    """Stage k trains on top of stage k-1's checkpoint."""
    k = int(wildcards.k)
    return [f"results/models/dynamic/stage{k - 1}.pt"] if k > 1 else []


def final_checkpoint(wildcards):
    if wildcards.model == "dynamic":
        return f"results/models/dynamic/stage{G}.pt"
    return f"results/models/{wildcards.model}/final.pt"


def static_for(wildcards):
    """truncated and pruned start from the static baseline's 100 % model."""
    return ["results/models/static/final.pt"] if wildcards.baseline in ("truncated", "pruned") else []


def baseline_block(wildcards):
    return config["baselines"][wildcards.baseline]


def exported_models(wildcards):
    """The files the board's runtime runs: ONNX, or TorchScript for runtime torch."""
    if BOARDS[wildcards.board]["runtime"] == "torch":
        return expand("results/torchscript/{model}/g{k}.pt", model=MODELS, k=range(1, G + 1))
    return expand("results/onnx/{model}/g{k}.onnx", model=MODELS, k=range(1, G + 1))


def board_config(wildcards):
    return BOARDS[wildcards.board]


def board_file(wildcards):
    return str(BASE / f"config/boards/{wildcards.board}.yaml")


def profile_threads(wildcards):
    """Measuring the host itself: hold every core so no other job disturbs the timings."""
    return workflow.cores if BOARDS[wildcards.board]["transport"]["type"] == "local" else 1


def measure_settings():
    return {k: v for k, v in config["profile"].items() if k != "boards"}


def report_configfiles():
    """The --configfile arguments of this run, for the report's regenerate commands."""
    return [os.path.relpath(c) for c in workflow.overwrite_configfiles or []]
