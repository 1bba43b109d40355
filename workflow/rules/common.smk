# Config loading and validation (before any job runs), wildcard constraints,
# target-list functions. Nothing else.
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

import dyndnn.results.analysis
import dyndnn.results.claims
import dyndnn.arch
import dyndnn.config
import dyndnn.defaults
import dyndnn.plausibility
import dyndnn.provenance
import dyndnn.schema
import dyndnn.results.record
from dyndnn.boards.board import load_board, oversubscribed, uses_bundle
from dyndnn.results.figures import FIGURES

BASE = Path(workflow.basedir)
# Every rule's software: this venv by default; with --sdm conda, the environment envs/dyndnn.yaml
# (the third-party packages, pinned like pyproject.toml) and this checkout's dyndnn package: a
# script job's preamble appends the launching process's sys.path, where `pip install -e .`
# put src/.
CONDA_ENV = str(BASE / "envs/dyndnn.yaml")
CLAIMS = str(BASE / "config/claims.yaml")
try:
    dyndnn.schema.validate_schema(config, dyndnn.defaults.CONFIG_SCHEMA)
    CFG = dyndnn.config.load(config, boards_dir=BASE / "config/boards")
    dyndnn.results.claims.check_claims(dyndnn.schema.read_yaml(CLAIMS).get("claims"), CLAIMS)
    BOARDS = {b: load_board(BASE / f"config/boards/{b}.yaml", dyndnn.defaults.BOARD_SCHEMA) for b in CFG.boards}
except ValueError as e:
    raise WorkflowError(f"Invalid configuration: {e}")
# Legal but implausible: said once per DAG, before any job runs.
for _warning in dyndnn.plausibility.warnings(CFG) + [
    w for b, facts in BOARDS.items() for w in oversubscribed(facts, f"config/boards/{b}.yaml")
]:
    logger.warning(f"Warning: {_warning}")

REFERENCE = None  # a record the report sets beside this run (report.reference)
if CFG.report.reference:
    REFERENCE = str(BASE / CFG.report.reference)
    try:  # verified before any job runs: a tampered or partial record stops the dry run
        dyndnn.results.record.verify(REFERENCE)
    except ValueError as e:
        raise WorkflowError(f"Invalid configuration: report.reference {CFG.report.reference!r}: {e}")

# The offline data's content (a few tenths of a second per 100 MB, once per DAG; data.sha256
# when set, which the config check has already compared with the file): an archive by its bytes,
# an image folder by every file's path and bytes (sha256_tree). See data_archive.
ARCHIVE_SHA256 = (
    (CFG.data.sha256 or dyndnn.provenance.sha256_file(CFG.data.path))
    if CFG.data.source == "images" and Path(CFG.data.path).is_file()
    else dyndnn.provenance.sha256_tree(CFG.data.path) if CFG.data.source == "images" and Path(CFG.data.path).is_dir() else None
)
G = CFG.model.groups
BASELINES = list(CFG.baselines)
MODELS = [dyndnn.arch.DYNAMIC, *BASELINES]  # exported, measured, compared in the figures
DESIGNS = {f"dynamic-{name}": name for name in CFG.designs}  # ablation variants: trained and evaluated only
DYNAMIC_MODELS = [dyndnn.arch.DYNAMIC, *DESIGNS]
EVAL_MODELS = [*MODELS, *DESIGNS]
# The dynamic DNN exported in the dense-with-zeros layout: exported and measured only, as
# the naive reference of the shipped (split) layout; same weights, same accuracy.
NAIVE = dyndnn.results.analysis.NAIVE
if NAIVE in DESIGNS:
    raise WorkflowError(
        f"Invalid configuration: ablation design name {NAIVE.removeprefix('dynamic-')!r} is reserved (technique {NAIVE} is the dense-layout reference)"
    )
MEASURED = MODELS + ([NAIVE] if CFG.export.naive_reference and CFG.model.connectivity == "nested" and CFG.export.layout != "dense" else [])
SEEDS = list(CFG.seeds)
PRIMARY_SEED = SEEDS[0]  # its models are exported and measured (latency does not depend on the seed)
REPORT_TEMPLATE = str(BASE / "report/templates/report.html.j2")


wildcard_constraints:
    model="|".join([*EVAL_MODELS, NAIVE]),
    dyn="|".join(DYNAMIC_MODELS),
    baseline="|".join(BASELINES) or "no-baseline-enabled",
    k=r"[1-9][0-9]*",
    seed=r"[0-9]+",
    board="|".join(BOARDS),


def data_archive(wildcards):
    """An offline image archive is an input whose bytes, not its timestamp, count: a copy
    of the same file made later (a fresh copy of the archive) keeps every finished job, while other
    bytes change ARCHIVE_SHA256, download_data's parameter, and rerun what was made from it."""
    return [ancient(CFG.data.path)] if ARCHIVE_SHA256 and Path(CFG.data.path).is_file() else []  # a folder: by content only (params)


def seed_of(wildcards):
    return int(wildcards.seed)


def repo_dir(wildcards):
    """The checkout (provenance: git commit and state)."""
    return workflow.basedir


def previous_stage(wildcards):
    """Stage k trains on top of stage k-1's checkpoint (same seed)."""
    k = int(wildcards.k)
    return expand(rules.train_increment.output.ckpt, dyn=wildcards.dyn, seed=wildcards.seed, k=k - 1) if k > 1 else []


def design(wildcards):
    """(ModelConfig, TrainConfig) of a dynamic-DNN job: the config's, or its ablation
    design's (merged and validated once, in dyndnn.config.load)."""
    name = DESIGNS.get(wildcards.dyn)
    return CFG.designs[name][:2] if name else (CFG.model, CFG.train)


def design_model(wildcards):
    return dyndnn.config.as_params(design(wildcards)[0])


def stage_recipe(wildcards):
    """Stage k's recipe: stage k's epochs and peak LR resolved, the per-stage lists dropped,
    so editing another stage's value leaves this job alone."""
    return dyndnn.config.as_params(design(wildcards)[1].for_stage(int(wildcards.k)))


def static_full(wildcards):
    """The static baseline's dense 100 % model of the job's seed (its width-G job)."""
    return expand(rules.train_static_width.output.ckpt, seed=wildcards.seed, k=G)


def teacher_model(wildcards):
    return static_full(wildcards)


def teacher_targets_for(wildcards):
    """A distilled design learns from the static 100 % model's logits of each epoch's views
    (same seed), computed once for all its stages."""
    return expand(rules.teacher_targets.output[0], dyn=wildcards.dyn, seed=wildcards.seed) if design(wildcards)[1].distill > 0 else []


def teacher_views(wildcards):
    """What decides the teacher's targets: the views (augmentation, epochs: the design's
    longest stage) and the arithmetic; editing the LR of a stage leaves them alone."""
    recipe = design(wildcards)[1]
    epochs = max(recipe.for_stage(k).epochs for k in range(1, G + 1))
    keys = ("crop_padding", "hflip", "precision", "channels_last")
    return {"epochs": epochs, **{k: v for k, v in dyndnn.config.as_params(recipe).items() if k in keys}}


def ablation_designs():
    """technique name -> description and the knobs that make the design (ablation table)."""
    designs = {dyndnn.arch.DYNAMIC: dyndnn.config.design_knobs(CFG.model, CFG.train, "this config's design")}
    for technique, name in DESIGNS.items():
        designs[technique] = dyndnn.config.design_knobs(*CFG.designs[name])
    return designs


def final_checkpoint(wildcards):
    """The trained technique of the job's seed; export and profiling use the primary seed."""
    seed = wildcards.get("seed", PRIMARY_SEED)
    if wildcards.model in (NAIVE, *DYNAMIC_MODELS):  # the dense-layout reference is the dynamic DNN's export
        dyn = dyndnn.arch.DYNAMIC if wildcards.model == NAIVE else wildcards.model
        return expand(rules.train_increment.output.ckpt, dyn=dyn, seed=seed, k=G)[0]
    return expand(rules.train_baseline.output.ckpt, baseline=wildcards.model, seed=seed)[0]


def static_for(wildcards):
    """truncated and pruned start from the static baseline's 100 % model (same seed)."""
    return static_full(wildcards) if wildcards.baseline in dyndnn.arch.FROM_STATIC else []


def benchmark_files(wildcards):
    """The benchmark file of every job the report waits for (rules.*.benchmark, expanded)."""
    distilled = [dyn for dyn in DYNAMIC_MODELS if (CFG.designs[DESIGNS[dyn]][1] if dyn in DESIGNS else CFG.train).distill > 0]
    files = ["results/benchmarks/download_data.tsv", "results/benchmarks/prepare_data.tsv"]
    files += expand("results/benchmarks/train_increment/{dyn}/seed{seed}/stage{k}.tsv", dyn=DYNAMIC_MODELS, seed=SEEDS, k=range(1, G + 1))
    files += expand("results/benchmarks/teacher_targets/{dyn}/seed{seed}.tsv", dyn=distilled, seed=SEEDS)
    if "static" in BASELINES:
        files += expand("results/benchmarks/train_static_width/seed{seed}/w{k}.tsv", seed=SEEDS, k=range(1, G + 1))
    files += expand("results/benchmarks/train_baseline/seed{seed}/{baseline}.tsv", baseline=BASELINES, seed=SEEDS)
    files += expand("results/benchmarks/evaluate/seed{seed}/{model}.tsv", model=EVAL_MODELS, seed=SEEDS)
    files += expand("results/benchmarks/export/{model}.tsv", model=MEASURED)
    files += [f"results/benchmarks/bundle_board/{b}.tsv" for b in BOARDS if uses_bundle(BOARDS[b])]
    files += expand("results/benchmarks/profile_board/{board}.tsv", board=BOARDS)
    files += ["results/benchmarks/aggregate.tsv", "results/benchmarks/simulate_budget.tsv"]
    return files + expand("results/benchmarks/figures/{fig}.tsv", fig=FIGURES)


def record_histories(wildcards):
    """Every training job's per-epoch history (the record ships them)."""
    stages = expand(rules.train_increment.output.history, dyn=DYNAMIC_MODELS, seed=SEEDS, k=range(1, G + 1))
    baselines = expand(rules.train_baseline.output.history, baseline=BASELINES, seed=SEEDS)
    widths = expand(rules.train_static_width.output.history, seed=SEEDS, k=range(1, G + 1)) if "static" in BASELINES else []
    return stages + baselines + widths


def static_widths(wildcards):
    """The static baseline is its widths, each trained by its own job."""
    return expand(rules.train_static_width.output.ckpt, seed=wildcards.seed, k=range(1, G + 1)) if wildcards.baseline == "static" else []


def baseline_options(wildcards):
    return dyndnn.config.as_params(CFG.baseline_options[wildcards.baseline])


BASELINE_MODEL = dyndnn.config.as_params(CFG.model)
BASELINE_RECIPE = dyndnn.config.as_params(CFG.train.for_baseline())


def exported_models(wildcards):
    """The files the board's runtime runs: ONNX, or TorchScript for runtime torch."""
    if BOARDS[wildcards.board]["runtime"] == "torch":
        return expand("results/torchscript/{model}/g{k}.pt", model=MEASURED, k=range(1, G + 1))
    return expand("results/onnx/{model}/g{k}.onnx", model=MEASURED, k=range(1, G + 1))


# What decides an exported graph (not its checks): the evaluation counts its executed MACs.
EXPORT_GRAPH = {k: v for k, v in dyndnn.config.as_params(CFG.export).items() if k in ("layout", "opset", "ir_version")}


def export_settings(wildcards):
    """What the export job uses: the checks, and the layout (dense for the naive reference)."""
    settings = {k: v for k, v in dyndnn.config.as_params(CFG.export).items() if k != "naive_reference"}
    return {**settings, "layout": "dense" if wildcards.model == NAIVE else settings["layout"], "name": wildcards.model}


def board_bundle(wildcards):
    """The board's runtime bundle, if it gets one (else its installed runtime is used)."""
    return [f"results/bundles/{wildcards.board}/bundle.tar.gz"] if uses_bundle(BOARDS[wildcards.board]) else []


def board_config(wildcards):
    return BOARDS[wildcards.board]


def board_file(wildcards):
    return str(BASE / f"config/boards/{wildcards.board}.yaml")


def training_threads(wildcards):
    """Threads of a training or evaluation job (--set-threads or a profile's set-threads override
    it). With baselines to train, the static widths and the slimmable network run beside the
    dynamic DNN's chain (the static teacher, its targets, the stages), so two jobs run side by
    side with half the cores each: measured on 2 AVX512_BF16 cores (benchmarks/bench_threads.py),
    two 1-thread jobs train 1.07-1.40x the images/s of one 2-thread job. Without baselines the
    chain is all there is, and each job takes every core. Training is not bit-identical across
    thread counts (reductions split differently), so each epoch's history row names its
    threads. Evaluated per job, so `snakemake --unlock` needs no --cores."""
    return max(1, workflow.cores // 2) if BASELINES and workflow.cores >= 2 else workflow.cores


# Scheduling order when jobs wait for cores: the longest work first, so that the two slots end
# together. The dynamic DNN's chain (the static 100 % model, which is its teacher, the teacher's
# targets, the stages: the critical path) goes first, then the slimmable network (the longest job
# beside the chain), then the other static widths, widest first, and the pruned fine-tuning;
# evaluations and exports (about 2 minutes each) fill the end. With the widths below 100 % at the
# evaluations' priority, the main job of 849d81a ran static 50 % last, after every evaluation,
# while the other slot idled for 690 s.
CHAIN_PRIORITY = G + 1


def static_width_priority(wildcards):
    return CHAIN_PRIORITY if int(wildcards.k) == G else int(wildcards.k)


def baseline_priority(wildcards):
    return {"slimmable": G, "pruned": 1}.get(wildcards.baseline, 0)


def profile_threads(wildcards):
    """Measuring the host itself: hold every core so no other job disturbs the timings."""
    return workflow.cores if BOARDS[wildcards.board]["transport"]["type"] == "local" else 1


def measure_settings():
    return dyndnn.config.as_params(CFG.measure)


def report_configfiles():
    """The --configfile arguments of this run, for the report's regenerate commands."""
    return [os.path.relpath(c) for c in workflow.overwrite_configfiles or []]
