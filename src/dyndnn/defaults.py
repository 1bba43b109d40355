"""The configuration's defaults, read from its JSON schema: the one place they are written.

The workflow validates a run's config against `workflow/schemas/config.schema.yaml`
(filling these defaults in); the typed views (`dyndnn.arch.ModelConfig`,
`dyndnn.config.TrainConfig`, ...) take their field defaults from here, so a
default changed in the schema changes everywhere. Standard library and PyYAML only.
"""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["BOARD_SCHEMA", "CONFIG_SCHEMA", "default"]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"  # the package runs from its checkout (pip install -e)
CONFIG_SCHEMA = SCHEMA_DIR / "config.schema.yaml"
BOARD_SCHEMA = SCHEMA_DIR / "board.schema.yaml"


def _read_schema() -> dict:
    try:
        return yaml.safe_load(CONFIG_SCHEMA.read_text())
    except OSError as e:
        raise ImportError(
            f"dyndnn reads its config defaults from {CONFIG_SCHEMA}: {e.strerror} (install the checkout with pip install -e .)"
        ) from None


_SCHEMA = _read_schema()


def default(*path: str):
    """The schema's default of a key, e.g. default("train", "epochs") or
    default("baselines", "pruned", "finetune_epochs") (lists as tuples: the typed configs are frozen)."""
    node = _SCHEMA
    for key in path:
        node = node["properties"][key]
    value = node["default"]
    return tuple(value) if isinstance(value, list) else value
