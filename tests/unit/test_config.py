"""Config validation: bad input is rejected with a message that says what to change."""

from __future__ import annotations

import copy

import pytest

from dyndnn.config import ConfigError, load
from dyndnn.schema import read_yaml, validate_schema, with_overrides


@pytest.fixture
def schema(repo):
    return repo / "workflow/schemas/config.schema.yaml"


@pytest.fixture
def archive(tmp_path):
    """Stands in for the offline archive: config checks need data.path to exist, not its contents."""
    path = tmp_path / "cifar10-jpeg.tar.gz"
    path.write_bytes(b"not read by config checks")
    return path


def with_archive(config: dict, archive) -> dict:
    if config.get("data", {}).get("source") == "images":
        config["data"]["path"] = str(archive)
    return config


@pytest.fixture
def quick(repo, archive):
    """config/quick.yaml as `load` receives it (schema-validated, defaults filled in), reading an
    offline archive (`make quick DATA=...`): the data checks below are about data.path."""
    config = read_yaml(repo / "config/quick.yaml")
    config["data"].update(source="images", path=str(archive))
    validate_schema(config, repo / "workflow/schemas/config.schema.yaml")
    return config


@pytest.mark.parametrize("name", ["config.yaml", "quick.yaml", "laptop.yaml", "ablation.yaml", "long.yaml", "three-seeds.yaml"])
def test_shipped_configs_validate(repo, schema, name, archive):
    """Each preset alone and as Snakemake reads it: --configfile merged over config/config.yaml."""
    from snakemake.utils import update_config

    preset = with_archive(read_yaml(repo / "config" / name), archive)
    merged = read_yaml(repo / "config" / "config.yaml")
    update_config(merged, copy.deepcopy(preset))
    for config in (preset, merged) if "data" in preset else (merged,):  # an overlay (long, three-seeds) is read over config.yaml only
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


def test_data_path_and_checksum_are_checked_before_any_job(repo, quick, archive, tmp_path):
    import hashlib

    boards = repo / "config/boards"
    with pytest.raises(ConfigError, match=r"data.path .*nope.tar.gz does not exist"):
        load({**quick, "data": {**quick["data"], "path": str(tmp_path / "nope.tar.gz")}}, boards)
    with pytest.raises(ConfigError, match=r"sha256 [0-9a-f]{64} does not match data.sha256 0{64}"):
        load({**quick, "data": {**quick["data"], "sha256": "0" * 64}}, boards)
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert load({**quick, "data": {**quick["data"], "sha256": good}}, boards).data.sha256 == good


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
    with pytest.raises(
        ConfigError, match=r"ablation.kd.train.distill > 0 distils from the static baseline's 100 % model: enable baselines.static"
    ):
        load({**good, "baselines": static_off, "ablation": {"kd": {"train": {"distill": 0.5}}}}, boards)
    kd = load({**good, "baselines": {**static_off, "static": {"enabled": True}}, "ablation": {"kd": {"train": {"distill": 0.5}}}}, boards)
    assert kd.designs["kd"][1].distill == 0.5 and kd.train.distill == 0.0
    bad_name = copy.deepcopy(quick)
    bad_name["ablation"] = {"Bad-Name": {}}
    with pytest.raises(ConfigError, match="Bad-Name"):
        validate_schema(bad_name, schema)


def test_ablation_overrides_simulate_board_and_yaml_errors_are_named(repo, schema, quick, tmp_path):
    for override, message in [
        ({"train": {"schedule": "warp"}}, r"ablation.x.train.schedule: 'warp' is not one of"),
        ({"model": {"dropout": 3.0}}, r"ablation.x.model.dropout: 3.0 is greater than"),
        ({"train": {"epochs": 0}}, r"ablation.x.train.epochs: 0 is less than the minimum of 1"),
        ({"train": {"epochs": "two"}}, r"ablation.x.train.epochs: 'two' is not of type 'integer'"),
        ({"train": {"lr": -1}}, r"ablation.x.train.lr: -1 is less than or equal to the minimum of 0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            validate_schema({**copy.deepcopy(quick), "ablation": {"x": override}}, schema)
    with pytest.raises(ConfigError, match=r"^train.schedule: 'warp' is not one of"):
        validate_schema({**copy.deepcopy(quick), "train": {**quick["train"], "schedule": "warp"}}, schema)
    sim = copy.deepcopy(quick)
    sim["simulate"] = {"board": "nosuch"}
    validate_schema(sim, schema)
    with pytest.raises(ConfigError, match=r"simulate.board 'nosuch' is not a profiled board \(profile.boards: \['local'\]\)"):
        load(sim, repo / "config/boards")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line 3, column 2: YAML syntax error"):
        read_yaml(bad)


def test_claims_files_are_checked_before_any_job(repo):
    from dyndnn.results.claims import check_claims

    claims = read_yaml(repo / "config/claims.yaml")["claims"]
    check_claims(claims)  # the shipped file is fine
    for edit, message in [
        (lambda c: c[0].update(metric="nosuch"), r"claims\[0\] \(energy_range_vs_existing\).metric: unknown metric 'nosuch'"),
        (lambda c: c[1].update(check="roughly"), r"claims\[1\] .*check: unknown check 'roughly'"),
        (lambda c: c[2].pop("metric"), r"claims\[2\] .*missing metric"),
        (lambda c: c[2].update(value="lots"), r"at_least needs a numeric value"),
        (lambda c: c.append(dict(c[0])), r"id 'energy_range_vs_existing' appears twice"),
        (lambda c: c[0].update(metric=["top1_by_groups"]), r"claims\[0\] .*metric: a name expected, got \['top1_by_groups'\]"),
        (lambda c: c[0].update(value=-2.36), r"claims\[0\] .*value: -2.36: check at_least needs a finite value > 0"),
        (lambda c: c[0].update(value=float("nan")), r"check at_least needs a finite value > 0"),
        (lambda c: c[0].update(tolerance=1.5), r"tolerance: 1.5: a fraction in \[0, 1\) expected"),
    ]:
        bad = copy.deepcopy(claims)
        edit(bad)
        with pytest.raises(ValueError, match=message):
            check_claims(bad, "claims.yaml")


@pytest.mark.parametrize("name", ["local", "odroid-xu3", "jetson-nano"])
def test_shipped_boards_validate(repo, name):
    from dyndnn.boards.board import load_board

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
        (lambda b: b["transport"].update(host="board; rm -rf ~"), r"transport.host: 'board; rm -rf ~' does not match"),
        (lambda b: b["transport"].update(host="-oProxyCommand=sh"), r"transport.host: .* does not match"),
        (lambda b: b["transport"].update(user="me$(id)"), r"transport.user: .* does not match"),
        (lambda b: b["transport"].update(identity="~/.ssh/id x"), r"transport.identity: .* does not match"),
        (lambda b: b["transport"].update(workdir="/tmp/`reboot`"), r"transport.workdir: .* does not match"),
        (lambda b: b["transport"].update(python="python3 -c 'import os'"), r"transport.python: .* does not match"),
        (lambda b: b["transport"].update(connect_timeout_s=float("nan")), r"transport.connect_timeout_s: nan is not a finite number"),
        (lambda b: b["power"].update(rate_hz=float("inf")), r"power.rate_hz: inf is not a finite number"),
        (lambda b: b["mappings"]["A7"].update(cpus=[0, 0]), r"mapping A7 lists CPU 0 more than once"),
    ],
)
def test_bad_board_configs_are_rejected(repo, tmp_path, edit, message):
    from dyndnn.boards.board import load_board

    board = read_yaml(repo / "config/boards/odroid-xu3.yaml")
    edit(board)
    path = tmp_path / "odroid-xu3.yaml"
    path.write_text(__import__("yaml").safe_dump(board))
    with pytest.raises(ValueError, match=message):
        load_board(path, repo / "workflow/schemas/board.schema.yaml")


def test_run_time_settings_are_not_part_of_the_recipe(quick, schema, repo):
    """Where a job runs (device, threads) is runtime, not train: the old keys say where they went,
    and neither reaches a training job's params or its resume fingerprint."""
    from dyndnn.config import TrainConfig, as_params

    for key, home in (("device", "runtime.device"), ("threads", "--set-threads")):
        bad = copy.deepcopy(quick)
        bad["train"][key] = "cpu" if key == "device" else 1
        with pytest.raises(ConfigError, match=rf"train.{key}: moved to {home}"):
            validate_schema(bad, schema)
    cfg = load({**quick, "runtime": {"device": "cpu"}}, repo / "config/boards")
    assert cfg == load(quick, repo / "config/boards")  # the device is the jobs' (snakemake.config), not the recipe's
    recipe = as_params(cfg.train.for_stage(1))
    assert not {"device", "threads"} & set(recipe) and list(recipe) == sorted(recipe)
    assert TrainConfig(**recipe) == cfg.train.for_stage(1)


def test_defaults_are_written_once_in_the_schema(schema):
    """The typed configs' defaults are the schema's (dyndnn.defaults reads them from there)."""
    from dataclasses import fields

    from dyndnn.arch import ModelConfig
    from dyndnn.config import ExportConfig, MeasureSettings, TrainConfig

    props = read_yaml(schema)["properties"]
    for section, cls in (("model", ModelConfig), ("train", TrainConfig), ("export", ExportConfig), ("profile", MeasureSettings)):
        for f in fields(cls):
            if f.name in props[section]["properties"]:
                want = props[section]["properties"][f.name]["default"]
                assert f.default == (tuple(want) if isinstance(want, list) else want), f"{section}.{f.name}"


def numeric_keys(schema: dict) -> list[tuple[str, ...]]:
    """Every numeric key of a schema as a path; '[]' stands for any item or entry name."""
    found = []

    def walk(node, path):
        if not isinstance(node, dict):
            return
        types = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
        if {"number", "integer"} & set(types):
            found.append((path, node))
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, (*path, name))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], (*path, "[]"))
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key) or []:
                walk(sub, path)

    walk(schema, ())
    return found


def inject(node, path: tuple[str, ...], value) -> str:
    """Put `value` at `path` of a config: '[]' under a named block takes its first entry (board
    mappings, DVFS domains), under a list a list of one item (nested lists: every number the
    value). Returns the dotted key the error must name."""
    part, rest = path[0], path[1:]
    if not rest:
        node[part] = value
        return part
    if rest[0] != "[]":
        return f"{part}." + inject(node.setdefault(part, {}), rest, value)
    after = rest[1:]
    if isinstance(node.get(part), dict) and node[part]:  # named entries
        name = next(iter(node[part]))
        if not after:
            node[part][name] = value
            return f"{part}.{name}"
        return f"{part}.{name}." + inject(node[part][name], after, value)
    if after and after[0] != "[]":  # a list of blocks
        node[part] = [{}]
        return f"{part}.0." + inject(node[part][0], after, value)
    existing = node.get(part) if isinstance(node.get(part), list) and node.get(part) else [[0] * 3] if after else [0]
    item = [value, *existing[0][1:]] if after else value  # a list of lists of numbers: its first number
    node[part] = [item, *existing[1:]]
    return f"{part}.0" + ".0" * len(after)


def schema_cases(repo):
    return [
        (repo / "workflow/schemas/config.schema.yaml", repo / "config/config.yaml"),
        (repo / "workflow/schemas/board.schema.yaml", repo / "config/boards/odroid-xu3.yaml"),
    ]


def test_every_numeric_key_has_a_range(repo):
    """Every number a config or board file takes has a lower and an upper bound in its schema."""
    count = 0
    for schema_path, _ in schema_cases(repo):
        for path, node in numeric_keys(read_yaml(schema_path)):
            count += 1
            assert {"minimum", "exclusiveMinimum"} & set(node) and {"maximum", "exclusiveMaximum"} & set(node), ".".join(path)
    assert count >= 58


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), 1e30])
def test_every_numeric_key_refuses_non_finite_and_out_of_range_values(repo, archive, bad):
    """Over every numeric key of both schemas: NaN, infinities and huge values are refused with
    the key named, before any job (JSON Schema alone lets NaN through)."""
    checked = 0
    for schema_path, example in schema_cases(repo):
        for path, _ in numeric_keys(read_yaml(schema_path)):
            config = with_archive(read_yaml(example), archive)
            key = inject(config, path, bad)
            with pytest.raises(ConfigError) as e:
                validate_schema(config, schema_path)
            assert str(e.value).startswith(f"{key}: "), (key, str(e.value))
            checked += 1
    assert checked >= 58


@pytest.mark.parametrize(
    "block, says",
    [
        ({"contention": [[300, 150, 2.0]]}, "the window must start before it stops"),
        ({"contention": [[100, 200, 0]]}, "the slowdown must be > 0"),
        ({"budget_changes": [[300, 0]]}, "the budget factor must be > 0"),
        ({"steps": 100, "contention": [[50, 150, 2.0]]}, r"the window ends after the last step \(100\)"),
        ({"steps": 100, "contention": [], "budget_changes": [[100, 0.5]]}, r"the change comes after the last step \(99\)"),
        ({"steps": 100, "contention": [], "budget_changes": [], "window": 101}, r"simulate.window 101 is longer than the trace"),
    ],
)
def test_simulation_windows_are_ordered_and_their_factors_positive(repo, quick, block, says):
    quick["simulate"].update(block)
    with pytest.raises(ConfigError, match=says):
        load(quick, boards_dir=repo / "config/boards")


def test_a_local_board_asking_for_cpus_the_host_lacks_is_refused(repo, tmp_path):
    import os

    import yaml

    from dyndnn.boards.board import load_board

    board = read_yaml(repo / "config/boards/local.yaml")
    absent = max(os.sched_getaffinity(0)) + 1
    board["mappings"]["one-core"]["cpus"] = [absent]
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(board))
    with pytest.raises(ValueError, match=rf"mapping one-core asks for CPUs \[{absent}\], which this host does not offer"):
        load_board(path, repo / "workflow/schemas/board.schema.yaml")


def test_a_designs_epochs_are_not_silently_overridden_by_the_configs_stage_list(repo, quick):
    """A design that sets epochs means every stage; the config's stage_epochs is not inherited."""
    quick["train"]["stage_epochs"] = [1, 1, 1, 2]
    quick["ablation"] = {"long": {"train": {"epochs": 3}}, "staged": {"train": {"stage_epochs": [2, 2, 2, 2]}}}
    cfg = load(quick, boards_dir=repo / "config/boards")
    assert [cfg.designs["long"][1].for_stage(k).epochs for k in (1, 2, 3, 4)] == [3, 3, 3, 3]
    assert [cfg.designs["staged"][1].for_stage(k).epochs for k in (1, 2, 3, 4)] == [2, 2, 2, 2]
    assert [cfg.train.for_stage(k).epochs for k in (1, 2, 3, 4)] == [1, 1, 1, 2]


def _schema_node(*path):
    from dyndnn.defaults import _SCHEMA

    node = _SCHEMA
    for key in path:
        node = node["properties"][key]
    return node


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


# Every typed slice and the schema block it reads; keys of a block that are not the slice's fields
# are read elsewhere (named here with where).
SLICES = [
    ("dyndnn.arch", "ModelConfig", ("model",), {}),
    ("dyndnn.config", "DataConfig", ("data",), {}),
    ("dyndnn.config", "TrainConfig", ("train",), {}),
    ("dyndnn.config", "ExportConfig", ("export",), {}),
    ("dyndnn.config", "MeasureSettings", ("profile",), {"boards": "Config.boards"}),
    ("dyndnn.config", "ReportConfig", ("report",), {}),
    ("dyndnn.config", "BaselineConfig", ("baselines", "static"), {}),
    ("dyndnn.config", "PrunedConfig", ("baselines", "pruned"), {}),
    ("dyndnn.results.simulate", "TraceSpec", ("simulate",), {"board": "simulate_tables"}),
    ("dyndnn.results.runs", "Tolerances", ("compare",), {}),
]


@pytest.mark.parametrize("module, name, path, elsewhere", SLICES, ids=[s[1] for s in SLICES])
def test_typed_slices_take_their_defaults_from_the_schema(module, name, path, elsewhere):
    """One default per setting: a slice's field default is the schema's, and every key of its block is a field."""
    import dataclasses
    import importlib

    cls = getattr(importlib.import_module(module), name)
    props = _schema_node(*path)["properties"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(props) - set(elsewhere) <= set(fields), (
        f"{name}: schema keys without a field: {sorted(set(props) - set(elsewhere) - set(fields))}"
    )
    for key, prop in props.items():
        if key in fields and "default" in prop and fields[key].default is not dataclasses.MISSING:
            assert _plain(fields[key].default) == _plain(prop["default"]), (
                f"{name}.{key}: {fields[key].default!r} vs the schema's {prop['default']!r}"
            )


def test_typed_slices_refuse_unknown_keys():
    from dyndnn.config import PrunedConfig, ReportConfig, from_block
    from dyndnn.results.record import RecordError
    from dyndnn.results.runs import Tolerances
    from dyndnn.results.simulate import TraceSpec

    for cls in (ReportConfig, PrunedConfig, TraceSpec):
        with pytest.raises(ConfigError, match="unknown keys"):
            from_block(cls, {"no_such_key": 1})
    with pytest.raises(RecordError, match="unknown keys"):
        Tolerances.from_config({"compare": {"top1_pst": 2.0}})


def test_the_default_config_is_the_schemas_defaults(repo):
    """config/config.yaml writes out the main job's settings, which are the schema's defaults: a
    value it gives that differs from the schema's default would be a second default."""
    config = read_yaml(repo / "config/config.yaml")
    differ = []
    # One per-stage list cannot be a default (it has one entry per group, and a config that
    # sets epochs means every stage): the main job's stage epochs are config.yaml's alone, and
    # the presets that set epochs set them back to null (test_presets_that_set_epochs_...).
    main_job_only = {"train.stage_epochs"}

    def walk(block, path):
        for key, value in block.items():
            prop = _schema_node(*path, key)
            if isinstance(value, dict) and "properties" in prop:
                walk(value, (*path, key))
            elif ".".join((*path, key)) in main_job_only:
                continue
            elif "default" in prop and _plain(prop["default"]) != _plain(value):
                differ.append((".".join((*path, key)), value, prop["default"]))

    walk({k: v for k, v in config.items() if k != "ablation"}, ())
    assert not differ, f"config.yaml vs the schema's defaults (key, config.yaml, schema): {differ}"
    from dyndnn.arch import ModelConfig

    assert ModelConfig().to_dict() == ModelConfig(**config["model"]).to_dict()  # ModelConfig() is the main job's network


def test_presets_that_set_epochs_train_every_stage_for_those_epochs(repo):
    """Every preset is read over config.yaml: one that sets train.epochs must also set the main
    job's per-stage epochs back to null, or its stages would train config.yaml's 12 epochs."""
    main = read_yaml(repo / "config/config.yaml")
    assert len(main["train"]["stage_epochs"]) == main["model"]["groups"]
    presets = [p for p in sorted((repo / "config").glob("*.yaml")) if p.name != "config.yaml"]
    for path in presets:
        train = (read_yaml(path) or {}).get("train", {})
        if "epochs" in train:
            assert "stage_epochs" in train, f"{path.name} sets train.epochs but inherits config.yaml's stage_epochs"


def test_overrides_of_the_studies_apply_yaml_values_and_name_a_malformed_one():
    config = with_overrides({"train": {"lr": 0.1}}, ["train.lr=0.2", "model.head=ensemble", "train.stage_epochs=[8, 8, 4, 4]"])
    assert config == {"train": {"lr": 0.2, "stage_epochs": [8, 8, 4, 4]}, "model": {"head": "ensemble"}}
    for bad in ("train.lr", "lr=0.2", ".lr=0.2", "train.=1"):
        with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
            with_overrides({}, [bad])


def test_implausible_but_typed_combinations_are_refused_or_named(repo, quick, tmp_path):
    """Opset against IR version is an error (no reader takes it); a batch larger than the training
    set and more threads than a mapping's CPUs are legal and named as warnings before any job."""
    import yaml

    from dyndnn.boards.board import load_board, oversubscribed
    from dyndnn.plausibility import warnings as plausibility_warnings

    boards = repo / "config/boards"
    with pytest.raises(
        ConfigError, match=r"export.opset 20 with export.ir_version 7: readers of IR 7 take opsets up to 14; .* ir_version to 9"
    ):
        load({**quick, "export": {**quick["export"], "opset": 20, "ir_version": 7}}, boards)
    load({**quick, "export": {**quick["export"], "opset": 20, "ir_version": 9}}, boards)  # a consistent pair is fine
    assert plausibility_warnings(load(quick, boards)) == []
    big = load({**quick, "train": {**quick["train"], "batch_size": 8192}}, boards)
    assert plausibility_warnings(big) == [
        "train.batch_size 8192 is larger than the 5,000 training images: every epoch is one step of a smaller batch "
        "(set a smaller train.batch_size or a larger data.train_subset)"
    ]
    board = read_yaml(repo / "config/boards/odroid-xu3.yaml")
    board["mappings"]["A7"].update(cpus=[0, 1], threads=64)
    path = tmp_path / "odroid-xu3.yaml"
    path.write_text(yaml.safe_dump(board))
    facts = load_board(path, repo / "workflow/schemas/board.schema.yaml")
    assert oversubscribed(facts, "odroid-xu3.yaml") == [
        "odroid-xu3.yaml: mapping A7 runs 64 threads on 2 CPU(s) [0, 1]: the threads contend for the CPUs (threads: cpus gives one per CPU)"
    ]
