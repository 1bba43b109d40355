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
