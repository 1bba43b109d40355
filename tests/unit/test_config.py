"""Config validation: bad input is rejected with a message that says what to change."""

from __future__ import annotations

import copy

import pytest

from dyndnn.config import ConfigError, load, read_yaml, validate_schema


@pytest.fixture
def schema(repo):
    return repo / "workflow/schemas/config.schema.yaml"


@pytest.fixture
def quick(repo):
    return read_yaml(repo / "config/quick.yaml")


@pytest.mark.parametrize("name", ["config.yaml", "quick.yaml", "laptop.yaml", "ablation.yaml"])
def test_shipped_configs_validate(repo, schema, name):
    """Each preset alone and as Snakemake reads it: --configfile merged over config/config.yaml."""
    from snakemake.utils import update_config

    preset = read_yaml(repo / "config" / name)
    merged = read_yaml(repo / "config" / "config.yaml")
    update_config(merged, copy.deepcopy(preset))
    for config in (preset, merged):
        validate_schema(config, schema)
        cfg = load(config, boards_dir=repo / "config/boards")
        assert cfg.model.groups == 4 and cfg.boards == ("local",)
    if name == "ablation.yaml":  # its base stays the classic, undistilled design
        assert cfg.train.distill == 0.0 and cfg.model.head == "sum"


def test_defaults_are_filled(schema, quick):
    validate_schema(quick, schema)
    assert quick["train"]["momentum"] == 0.9 and quick["export"]["opset"] == 13


def test_groups_must_divide_channels(repo, schema, quick):
    quick["model"]["groups"] = 5
    validate_schema(quick, schema)
    with pytest.raises(ConfigError, match=r"conv_channels .* not divisible by groups=5"):
        load(quick, boards_dir=repo / "config/boards")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["model"].update(connectivity="diagonal"), "diagonal"),
        (lambda c: c["train"].update(epochs=0), "minimum"),
        (lambda c: c.update(trian={}), "Additional properties"),
        (lambda c: c["profile"].update(boards=[]), "boards"),
    ],
)
def test_schema_rejects_bad_values(schema, quick, edit, message):
    bad = copy.deepcopy(quick)
    edit(bad)
    with pytest.raises(ConfigError, match=message):
        validate_schema(bad, schema)


def test_cross_field_rules(repo, schema, quick):
    validate_schema(quick, schema)
    boards = repo / "config/boards"
    with pytest.raises(ConfigError, match="data.path is not set"):
        load({**quick, "data": {**quick["data"], "path": None}}, boards)
    with pytest.raises(ConfigError, match="multiple of 10"):
        load({**quick, "data": {**quick["data"], "train_subset": 1234}}, boards)
    with pytest.raises(ConfigError, match=r"no board config for \['nope'\]"):
        load({**quick, "profile": {**quick["profile"], "boards": ["nope"]}}, boards)


def test_seeds_stage_schedules_and_ablation_designs(repo, schema, quick):
    boards = repo / "config/boards"
    good = copy.deepcopy(quick)
    good.update(seeds=[3, 1], ablation={"pc": {"model": {"head": "per_config"}, "train": {"stage_epochs": [1, 1, 2, 2]}}})
    validate_schema(good, schema)
    cfg = load(good, boards)
    assert cfg.seeds == (3, 1) and cfg.designs["pc"][0].head == "per_config" and cfg.designs["pc"][1].stage_epochs == (1, 1, 2, 2)
    assert cfg.designs["pc"][1].for_stage(3).epochs == 2 and cfg.train.for_stage(3).epochs == quick["train"]["epochs"]
    with pytest.raises(ConfigError, match="every seed must appear once"):
        load({**good, "seeds": [1, 1]}, boards)
    with pytest.raises(ConfigError, match=r"train.stage_epochs has 3 entries: give one per stage \(model.groups = 4\)"):
        load({**good, "train": {**good["train"], "stage_epochs": [1, 2, 3]}}, boards)
    with pytest.raises(ConfigError, match=r"ablation.bad: TrainConfig: unknown keys \['epochz'\]"):
        load({**good, "ablation": {"bad": {"train": {"epochz": 3}}}}, boards)
    with pytest.raises(ConfigError, match=r"ablation.late: train.stage_lr has 2 entries"):
        load({**good, "ablation": {"late": {"train": {"stage_lr": [0.1, 0.2]}}}}, boards)
    with pytest.raises(ConfigError, match="ablation.g2: model.groups must stay 4"):
        load({**good, "ablation": {"g2": {"model": {"groups": 2}}}}, boards)
    static_off = {**good["baselines"], "static": {"enabled": False}, "truncated": {"enabled": False}, "pruned": {"enabled": False}}
    with pytest.raises(ConfigError, match=r"ablation.kd.train.distill > 0 distils from the static baseline's 100 % model: enable baselines.static"):
        load({**good, "baselines": static_off, "ablation": {"kd": {"train": {"distill": 0.5}}}}, boards)
    kd = load({**good, "baselines": {**static_off, "static": {"enabled": True}}, "ablation": {"kd": {"train": {"distill": 0.5}}}}, boards)
    assert kd.designs["kd"][1].distill == 0.5 and kd.train.distill == 0.0
    bad_name = copy.deepcopy(quick)
    bad_name["ablation"] = {"Bad-Name": {}}
    with pytest.raises(ConfigError, match="Bad-Name"):
        validate_schema(bad_name, schema)


@pytest.mark.parametrize("name", ["local", "odroid-xu3", "jetson-nano"])
def test_shipped_boards_validate(repo, name):
    from dyndnn.boards import load_board

    board = load_board(repo / f"config/boards/{name}.yaml", repo / "workflow/schemas/board.schema.yaml")
    assert board["name"] == name and board["mappings"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda b: b["mappings"]["A7"].update(dvfs="a9"), "not defined under dvfs"),
        (lambda b: b["power"].update(total=["a15", "nope"]), r"unknown rails \['nope'\]"),
        (lambda b: b["power"].pop("rails"), "needs 'rails' and 'total'"),
        (lambda b: b.update(name="other"), "expected 'odroid-xu3'"),
        (lambda b: b["transport"].update(password="hunter2"), "Additional properties"),
    ],
)
def test_bad_board_configs_are_rejected(repo, tmp_path, edit, message):
    from dyndnn.boards import load_board

    board = read_yaml(repo / "config/boards/odroid-xu3.yaml")
    edit(board)
    path = tmp_path / "odroid-xu3.yaml"
    path.write_text(__import__("yaml").safe_dump(board))
    with pytest.raises(ValueError, match=message):
        load_board(path, repo / "workflow/schemas/board.schema.yaml")
