"""Reading and validating config and board files against their JSON schemas, before any job
runs: every error names the key and the file; NaN and infinities are refused (JSON Schema's
bounds let them through); keys that moved out of the recipe say where they went."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from dyndnn.config import ConfigError

__all__ = ["MOVED", "non_finite", "validate_schema", "read_yaml", "with_overrides"]


# Run-time settings that used to sit in the recipe: (section, key, where they are now).
MOVED = (
    ("train", "device", "runtime.device"),
    ("train", "threads", "--set-threads / a profile's set-threads (jobs use the threads they are given)"),
)


def non_finite(value, path: str = "") -> tuple[str, float] | None:
    """(dotted key, value) of the first NaN or infinity anywhere in a config or board file.
    JSON Schema's bounds cannot stop NaN (every comparison with it is false), so this walk
    guards every number once, whatever its key; the schema's bounds give each its range."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(top level)", value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = non_finite(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def validate_schema(config: dict, schema_path: str | Path) -> None:
    """Validate (and fill defaults into) `config` with the JSON schema, as the workflow does;
    then every ablation design's model and train blocks, merged over the config's, with the
    same schema (an override is a config value like any other). Every number must be finite
    (`non_finite`) and inside the schema's range."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = read_yaml(schema_path)
    validator = jsonschema.validators.validator_for(schema)(schema)

    def first_error(instance):
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        return (".".join(map(str, error.absolute_path)) or "(top level)", error.message) if error is not None else None

    bad = non_finite(config)
    if bad:
        raise ConfigError(f"{bad[0]}: {bad[1]} is not a finite number (NaN and infinities are refused)")
    for section, name, home in MOVED:
        if name in (config.get(section) or {}):
            raise ConfigError(
                f"{section}.{name}: moved to {home} (where a job runs is not part of the recipe: changing it retrains nothing)"
            )
    found = first_error(config)
    if found:
        raise ConfigError(f"{found[0]}: {found[1]}")
    try:
        validate(config, str(schema_path), set_default=True)  # fills the defaults
    except WorkflowError as e:
        raise ConfigError(str(e)) from None
    for name, design in (config.get("ablation") or {}).items():
        merged = {**config, "ablation": {}}
        for section in ("model", "train"):
            merged[section] = {**config.get(section, {}), **design.get(section, {})}
        found = first_error(merged)
        if found:
            raise ConfigError(
                f"ablation.{name}.{found[0]}: {found[1]} (the override, merged over the config's {found[0].split('.')[0]} block, must satisfy the same schema)"
            )


def read_yaml(path: str | Path) -> dict:
    """A YAML file as a dict; a syntax error names the file, line and column."""
    with open(path) as f:
        try:
            return yaml.safe_load(f) or {}
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
            raise ConfigError(f"{where}: YAML syntax error: {e.problem or e}") from None


def with_overrides(config: dict, items: list[str]) -> dict:
    """`config` with `SECTION.KEY=VALUE` overrides applied (values read as YAML), as the studies
    in benchmarks/ take them on their command line (`--set train.lr=0.2 model.head=ensemble`)."""
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not (sep and dot and section and name):
            raise ConfigError(f"override {item!r}: expected SECTION.KEY=VALUE, e.g. train.lr=0.2")
        config.setdefault(section, {})[name] = yaml.safe_load(value)
    return config
