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


@pytest.mark.parametrize("name", ["config.yaml", "quick.yaml"])
def test_shipped_configs_validate(repo, schema, name):
    config = read_yaml(repo / "config" / name)
    validate_schema(config, schema)
    cfg = load(config, boards_dir=repo / "config/boards")
    assert cfg.model.groups == 4 and cfg.boards == ("local",)


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
