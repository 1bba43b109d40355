"""Typed, frozen view of the pipeline configuration, with the cross-field checks.

Scope: structure, types and defaults are checked by the JSON schema in
`workflow/schemas/` (through `snakemake.utils.validate` in the workflow, or
`dyndnn.schema.validate_schema`); `load` turns the validated dict into frozen
dataclasses and rejects combinations a schema cannot express. Both run before
any job. Defaults are written once, in the schema (`dyndnn.defaults`); rules pass
each job its typed slice (`as_params`), and a job rebuilds it with `cls(**params)`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from dyndnn.arch import BASELINES, FROM_STATIC, ModelConfig
from dyndnn.defaults import default
from dyndnn.provenance import sha256_file

__all__ = [
    "ConfigError",
    "SPLIT_SIZES",
    "from_block",
    "ReportConfig",
    "BaselineConfig",
    "PrunedConfig",
    "BASELINE_OPTIONS",
    "results_config",
    "PROVENANCE_ONLY",
    "DataConfig",
    "TrainConfig",
    "ExportConfig",
    "MeasureSettings",
    "Config",
    "load",
    "as_params",
    "design_knobs",
]

NUM_CLASSES = 10
SPLIT_SIZES = {"train": 50_000, "test": 10_000}


class ConfigError(ValueError):
    """A configuration that must not reach any job; the message says what to change."""


@dataclass(frozen=True)
class DataConfig:
    source: str
    path: str | None = default("data", "path")
    sha256: str | None = default("data", "sha256")
    train_subset: int | None = default("data", "train_subset")
    test_subset: int | None = default("data", "test_subset")


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe: what decides the weights (where it runs is `runtime`, not here)."""

    epochs: int = default("train", "epochs")
    batch_size: int = default("train", "batch_size")
    lr: float = default("train", "lr")
    momentum: float = default("train", "momentum")
    nesterov: bool = default("train", "nesterov")
    weight_decay: float = default("train", "weight_decay")
    schedule: str = default("train", "schedule")
    step_size: int = default("train", "step_size")
    gamma: float = default("train", "gamma")
    label_smoothing: float = default("train", "label_smoothing")
    crop_padding: int = default("train", "crop_padding")
    hflip: bool = default("train", "hflip")
    # Stage schedules of the dynamic DNN: per-stage epochs and peak LR (None = `epochs`, `lr`
    # for every stage). Baselines use `epochs` and `lr`.
    stage_epochs: tuple[int, ...] | None = default("train", "stage_epochs")
    stage_lr: tuple[float, ...] | None = default("train", "stage_lr")
    # Knowledge distillation of every incremental stage from the static baseline's 100 % model
    # (the dense model trained with the same data and budget): loss = (1 - distill) * CE +
    # distill * T^2 * KL(teacher || student) at temperature T (Hinton et al. 2015). 0 = off.
    distill: float = default("train", "distill")
    distill_temperature: float = default("train", "distill_temperature")
    # Training arithmetic: bf16 autocast where the device runs it natively (auto), or
    # fp32 / bf16 by name; channels_last memory layout for the convolutions.
    precision: str = default("train", "precision")
    channels_last: bool = default("train", "channels_last")

    def __post_init__(self):
        for name in ("stage_epochs", "stage_lr"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def for_stage(self, k: int) -> "TrainConfig":
        """The recipe of incremental stage k (1-based)."""
        return replace(
            self,
            epochs=self.stage_epochs[k - 1] if self.stage_epochs else self.epochs,
            lr=self.stage_lr[k - 1] if self.stage_lr else self.lr,
            stage_epochs=None,
            stage_lr=None,
        )

    def for_baseline(self) -> "TrainConfig":
        """The baselines' recipe: `epochs` and `lr`; the dynamic DNN's stage lists and
        distillation are not theirs (editing them retrains no baseline)."""
        return replace(self, stage_epochs=None, stage_lr=None, distill=0.0)


@dataclass(frozen=True)
class ExportConfig:
    opset: int = default("export", "opset")
    ir_version: int = default("export", "ir_version")
    parity_images: int = default("export", "parity_images")
    parity_atol: float = default("export", "parity_atol")
    layout: str = default("export", "layout")
    naive_reference: bool = default("export", "naive_reference")


@dataclass(frozen=True)
class MeasureSettings:
    """The measurement protocol (MLPerf SingleStream): warm-up discarded, then at
    least `min_runs` timed inferences and at least `min_seconds` per point, spread over
    `rounds` interleaved, randomised rounds in `workers` processes."""

    warmup: int = default("profile", "warmup")
    min_runs: int = default("profile", "min_runs")
    min_seconds: float = default("profile", "min_seconds")
    rounds: int = default("profile", "rounds")
    workers: int = default("profile", "workers")
    visit_warmup: int = default("profile", "visit_warmup")
    shuffle: bool = default("profile", "shuffle")
    fresh_sessions: bool = default("profile", "fresh_sessions")
    huge_pages: bool = default("profile", "huge_pages")
    seed: int = default("profile", "seed")
    parity_images: int = default("profile", "parity_images")
    parity_atol: float = default("profile", "parity_atol")
    max_others_share: float = default("profile", "max_others_share")
    max_median_spread: float = default("profile", "max_median_spread")
    max_control_spread: float = default("profile", "max_control_spread")
    refuse_busy: bool = default("profile", "refuse_busy")
    busy_probe_s: float = default("profile", "busy_probe_s")


@dataclass(frozen=True)
class ReportConfig:
    """What the report is called, its accuracy floor, and the record it sets beside the run."""

    title: str = default("report", "title")
    top1_floor: float = default("report", "top1_floor")
    reference: str | None = default("report", "reference")


@dataclass(frozen=True)
class BaselineConfig:
    """An existing work's block (baselines.<name>)."""

    enabled: bool = default("baselines", "static", "enabled")


@dataclass(frozen=True)
class PrunedConfig(BaselineConfig):
    """baselines.pruned: L1 filter pruning of the static 100 % model, then fine-tuning."""

    enabled: bool = default("baselines", "pruned", "enabled")
    finetune_epochs: int = default("baselines", "pruned", "finetune_epochs")


BASELINE_OPTIONS = {name: PrunedConfig if name == "pruned" else BaselineConfig for name in BASELINES}


@dataclass(frozen=True)
class Config:
    seed: int
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    evaluate_batch_size: int
    export: ExportConfig
    measure: MeasureSettings
    boards: tuple[str, ...]
    report: ReportConfig = ReportConfig()
    baselines: tuple[str, ...] = ()
    baseline_options: dict = field(default_factory=dict)  # name -> BaselineConfig / PrunedConfig, every known baseline
    designs: dict = field(default_factory=dict)  # ablation: name -> (ModelConfig, TrainConfig, description)
    seeds: tuple[int, ...] = (0,)  # training seeds; seeds[0] is the primary seed (its models are exported and measured)


# Settings that name a run or say where it runs but change no number: the tables' provenance
# leaves them out, so editing one reruns the report and the record only (record and report
# keep them). report.reference is read by the figures and the report themselves.
PROVENANCE_ONLY = (("report", "title"), ("report", "reference"), ("runtime",))


def results_config(config: dict) -> dict:
    """The config as the aggregated tables' provenance: without PROVENANCE_ONLY settings."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    for path in PROVENANCE_ONLY:
        node = out
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return out


def as_params(value) -> dict:
    """A typed config slice as a rule's params: builtins only (Snakemake reruns a job when
    their text changes, and cannot compare other objects), keys sorted; the job rebuilds the
    dataclass with `cls(**params)`."""
    return dict(sorted((k, list(v) if isinstance(v, tuple) else v) for k, v in asdict(value).items()))


def from_block(cls, values: dict | None):
    """A typed slice from its config block; unknown keys are refused, not dropped."""
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**values)


def _check_stage_lists(train: TrainConfig, groups: int, where: str) -> None:
    for name in ("stage_epochs", "stage_lr"):
        values = getattr(train, name)
        if values is not None and len(values) != groups:
            raise ConfigError(f"{where}.{name} has {len(values)} entries: give one per stage (model.groups = {groups})")


def _check_data_path(path: Path, sha256: str | None) -> None:
    """data.path exists, and a .tar.gz matches data.sha256 when one is given (before any job)."""
    if not path.exists():
        raise ConfigError(
            f"data.path {path} does not exist (relative paths are relative to the working directory {Path.cwd()}); source=images needs a folder or .tar.gz"
        )
    if sha256 and path.is_dir():
        raise ConfigError(
            f"data.sha256 is set but data.path {path} is a folder: a checksum applies to a .tar.gz archive (unset data.sha256, or point data.path at the archive)"
        )
    if sha256 and path.is_file():
        digest = sha256_file(path)
        if digest != sha256:
            raise ConfigError(f"data.path {path}: sha256 {digest} does not match data.sha256 {sha256} (a different or damaged archive)")


def design_knobs(model: ModelConfig, train: TrainConfig, description: str) -> dict:
    """The settings that tell designs of the dynamic DNN apart (the ablation table's columns)."""
    G = model.groups
    return {
        "description": description,
        "head": model.head,
        "dropout": model.dropout,
        "frozen_dropout": model.frozen_dropout,
        "stage_epochs": str(list(train.stage_epochs or [train.epochs] * G)),
        "stage_lr": str(list(train.stage_lr or [train.lr] * G)),
        "distill": f"{train.distill} (T={train.distill_temperature})" if train.distill else "off",
    }


def load(config: dict, boards_dir: str | Path | None = None) -> Config:
    """Build the typed config from a schema-validated dict; raise ConfigError on bad combinations."""
    try:
        model = ModelConfig(**config["model"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model: {e}") from None
    train = from_block(TrainConfig, config["train"])
    _check_stage_lists(train, model.groups, "train")
    baselines = _baselines(config)
    designs = _designs(config, model)
    distilled = [w for w, t in [("train", train), *((f"ablation.{n}.train", d[1]) for n, d in designs.items())] if t.distill > 0]
    if distilled and "static" not in baselines:
        raise ConfigError(f"{distilled[0]}.distill > 0 distils from the static baseline's 100 % model: enable baselines.static too")
    profile = dict(config["profile"])
    boards = _boards(profile.pop("boards"), boards_dir)
    sim_board = config["simulate"].get("board")
    if sim_board is not None and sim_board not in boards:
        raise ConfigError(
            f"simulate.board {sim_board!r} is not a profiled board (profile.boards: {list(boards)}): the simulation replays that board's measurements"
        )
    _check_simulation(config["simulate"])
    _check_export(config["export"])
    seeds = tuple(config.get("seeds") or (config["seed"],))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {list(seeds)}: every seed must appear once")
    return Config(
        seed=config["seed"],
        seeds=seeds,
        designs=designs,
        data=_data(config["data"]),
        model=model,
        train=train,
        evaluate_batch_size=config["evaluate"]["batch_size"],
        export=from_block(ExportConfig, config["export"]),
        measure=from_block(MeasureSettings, profile),
        boards=boards,
        report=from_block(ReportConfig, config["report"]),
        baselines=baselines,
        baseline_options={name: from_block(BASELINE_OPTIONS[name], config["baselines"].get(name)) for name in BASELINES},
    )


# The newest opset a reader of each ONNX IR version takes (onnx.helper.VERSION_TABLE: ONNX 1.9 =
# IR 7 / opset 14, 1.13 = IR 8 / opset 18, 1.15 = IR 9 / opset 20, 1.16 = IR 10 / opset 21).
MAX_OPSET_FOR_IR = {7: 14, 8: 18, 9: 20, 10: 21}


def _check_export(block: dict) -> None:
    """export.opset against export.ir_version: a model stamped with an IR version whose readers
    do not know its opset loads nowhere (ONNX Runtime 1.10 reads IR 7, and IR 7 ends at opset 14)."""
    opset, ir = block.get("opset", default("export", "opset")), block.get("ir_version", default("export", "ir_version"))
    if ir in MAX_OPSET_FOR_IR and opset > MAX_OPSET_FOR_IR[ir]:
        newest = min(v for v, top in MAX_OPSET_FOR_IR.items() if top >= opset)
        raise ConfigError(
            f"export.opset {opset} with export.ir_version {ir}: readers of IR {ir} take opsets up to {MAX_OPSET_FOR_IR[ir]}; "
            f"lower the opset, or raise ir_version to {newest} or more"
        )


def _check_simulation(block: dict) -> None:
    """simulate: contention windows [start, stop, slowdown] with start < stop <= steps and a
    slowdown > 0, budget changes [step, factor] inside the trace with a factor > 0, a moving-average
    window no longer than the trace (the schema bounds each number alone)."""
    steps = block.get("steps", default("simulate", "steps"))
    window = block.get("window", default("simulate", "window"))
    if window > steps:
        raise ConfigError(f"simulate.window {window} is longer than the trace (simulate.steps {steps})")
    for i, (start, stop, slowdown) in enumerate(block.get("contention") or []):
        if not start < stop:
            raise ConfigError(f"simulate.contention[{i}] = [{start}, {stop}, {slowdown}]: the window must start before it stops")
        if stop > steps:
            raise ConfigError(f"simulate.contention[{i}] = [{start}, {stop}, {slowdown}]: the window ends after the last step ({steps})")
        if not slowdown > 0:
            raise ConfigError(f"simulate.contention[{i}] = [{start}, {stop}, {slowdown}]: the slowdown must be > 0 (2.0 = twice as slow)")
    for i, (step, factor) in enumerate(block.get("budget_changes") or []):
        if not factor > 0:
            raise ConfigError(f"simulate.budget_changes[{i}] = [{step}, {factor}]: the budget factor must be > 0")
        if step >= steps:
            raise ConfigError(f"simulate.budget_changes[{i}] = [{step}, {factor}]: the change comes after the last step ({steps - 1})")


def _data(block: dict) -> DataConfig:
    """data: an image archive that exists (and matches its checksum), stratifiable subsets."""
    data = from_block(DataConfig, block)
    if data.source == "images" and not data.path:
        raise ConfigError("data.source is 'images' but data.path is not set: give a folder or .tar.gz in image-folder layout")
    if data.source == "images":
        _check_data_path(Path(data.path), data.sha256)
    for split in SPLIT_SIZES:
        n = getattr(data, f"{split}_subset")
        if n is not None and (n % NUM_CLASSES or n > SPLIT_SIZES[split]):
            raise ConfigError(
                f"data.{split}_subset={n}: a stratified subset needs a multiple of {NUM_CLASSES} "
                f"no larger than the {SPLIT_SIZES[split]:,} {split} images"
            )
    return data


def _baselines(config: dict) -> tuple[str, ...]:
    """The enabled baselines; truncated and pruned need the static one they derive from."""
    baselines = tuple(name for name in BASELINES if config["baselines"].get(name, {}).get("enabled"))
    needs_static = [b for b in FROM_STATIC if b in baselines]
    if needs_static and "static" not in baselines:
        raise ConfigError(f"baselines {needs_static} are derived from the static baseline's 100 % model: enable baselines.static too")
    return baselines


def _boards(boards: list[str], boards_dir: str | Path | None) -> tuple[str, ...]:
    """profile.boards, each with its config file in boards_dir (when given)."""
    if boards_dir is not None:
        missing = [b for b in boards if not (Path(boards_dir) / f"{b}.yaml").is_file()]
        if missing:
            raise ConfigError(f"profile.boards: no board config for {missing} in {boards_dir} (add <name>.yaml there)")
    return tuple(boards)


def _design_train(base: dict, override: dict) -> dict:
    """A design's train block over the config's: a design that sets `epochs` (or `lr`) and not
    the per-stage list means it for every stage, so the config's `stage_epochs` (`stage_lr`)
    is not inherited (it would silently win over the design's value)."""
    merged = {**base, **override}
    for single, per_stage in (("epochs", "stage_epochs"), ("lr", "stage_lr")):
        if single in override and per_stage not in override:
            merged[per_stage] = None
    return merged


def _designs(config: dict, model: ModelConfig) -> dict:
    """ablation: name -> (ModelConfig, TrainConfig, description), each design's overrides merged
    over the config's blocks (the one place designs are merged)."""
    designs = {}
    for name, d in (config.get("ablation") or {}).items():
        try:
            d_model = ModelConfig(**{**config["model"], **d.get("model", {})})
            d_train = from_block(TrainConfig, _design_train(config["train"], d.get("train", {})))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"ablation.{name}: {e}") from None
        if d_model.groups != model.groups:
            raise ConfigError(f"ablation.{name}: model.groups must stay {model.groups} (the table compares configurations 1..G)")
        _check_stage_lists(d_train, model.groups, f"ablation.{name}: train")
        designs[name] = (d_model, d_train, d.get("description", ""))
    return designs
