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


def _read_defaults() -> dict[str, dict]:
    try:
        schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    except OSError as e:
        raise ImportError(
            f"dyndnn reads its config defaults from {CONFIG_SCHEMA}: {e.strerror} (install the checkout with pip install -e .)"
        ) from None
    return {
        section: {key: spec["default"] for key, spec in block.get("properties", {}).items() if "default" in spec}
        for section, block in schema["properties"].items()
    }


_DEFAULTS = _read_defaults()


def default(section: str, key: str):
    """The schema's default of `section.key` (lists as tuples: the typed configs are frozen)."""
    value = _DEFAULTS[section][key]
    return tuple(value) if isinstance(value, list) else value
