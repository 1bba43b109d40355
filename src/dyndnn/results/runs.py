"""A run as compare reads it: a record (verified against its manifest) or a results folder, its
tables, config and board facts; and the tolerances of the config's `compare` block."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dyndnn.config import ConfigError, from_block
from dyndnn.defaults import default
from dyndnn.results.contract import check_tables
from dyndnn.results.record import MANIFEST, RecordError, listed, record_path, verify

__all__ = ["Tolerances", "Run", "TABLES", "load_run"]


@dataclass(frozen=True)
class Tolerances:
    """The config's `compare` block (config/config.yaml documents each)."""

    top1_pts: float = default("compare", "top1_pts")  # top-1 in points, at least ...
    seed_sigmas: float = default(
        "compare", "seed_sigmas"
    )  # ... or this many standard deviations over training seeds (pooled per technique)
    confidence_abs: float = default("compare", "confidence_abs")  # normalised confidence
    latency_rel: float = default("compare", "latency_rel")  # median latency, same CPU identity
    ratio_rel: float = default("compare", "ratio_rel")  # latency ratio g1/gG, same CPU identity

    @classmethod
    def from_config(cls, config: dict) -> "Tolerances":
        """The tolerances of a run's config; an unknown key is refused (RecordError), not dropped."""
        block = (config or {}).get("compare") or {}
        try:
            return from_block(cls, {k: float(v) for k, v in block.items()})
        except (ConfigError, TypeError, ValueError) as e:
            raise RecordError(f"compare block of the reference's config: {e}") from None


@dataclass
class Run:
    label: str
    tables: dict[str, pd.DataFrame]
    config: dict
    boards: dict[str, dict]  # board -> facts
    manifest: dict | None = None  # a record's (verified); None for a results folder

    @property
    def verified(self) -> bool:
        """A record checked against its manifest (False: a results folder, read unverified)."""
        return self.manifest is not None

    @property
    def provenance(self) -> str:
        return "record, every file's sha256 verified" if self.verified else f"unverified run (no {MANIFEST})"

    def claims_file(self) -> Path | None:
        """The claims file a record ships (listed and verified), else None."""
        return Path(self.label) / "claims.yaml" if self.verified and listed(self.manifest, "claims.yaml") else None

    def precision(self, model: str) -> str:
        """The precision(s) a technique's training ran in ('' where the run does not say): a
        record's manifest, else the accuracy table's provenance."""
        stated = self.manifest.get("precision") if self.manifest else None
        if stated is None:
            meta = Path(self.label) / "tables/accuracy.meta.json"
            try:
                stated = json.loads(meta.read_text()).get("training_precision") if meta.is_file() else None
            except (json.JSONDecodeError, AttributeError):
                stated = None
        if isinstance(stated, dict):
            stated = stated.get(model)
        if isinstance(stated, str):
            stated = [stated]
        known = [p for p in stated or [] if p in ("fp32", "bf16")]
        return "+".join(sorted(known))

    @property
    def top1_floor(self) -> float:
        """report.top1_floor of the run's config (0 where an older config lacks it)."""
        return self.config.get("report", {}).get("top1_floor", 0.0)


TABLES = ("accuracy", "latency_summary", "boards", "seed_summary", "operating_points", "ranges", "footprint")
OPTIONAL = ("latency_ratios", "accuracy_seeds")  # tables of newer records (or only checked): read when present


def load_run(path: str | Path) -> Run:
    """A record (verified against its manifest) or a results folder; RecordError names
    whatever is missing or malformed."""
    path = Path(path)
    if not path.is_dir():
        raise RecordError(f"{path}: no such folder (give a record, e.g. reference/quick, or a results folder)")
    manifest = None
    if (path / MANIFEST).is_file():
        manifest = verify(path)
        config = manifest["config"]
    else:
        meta = path / "tables/accuracy.meta.json"
        if not meta.is_file():
            raise RecordError(f"{meta}: missing ({path} is neither a record with {MANIFEST} nor a results folder with tables/)")
        try:
            config = json.loads(meta.read_text()).get("config", {})
        except (json.JSONDecodeError, AttributeError) as e:
            raise RecordError(f"{meta}: malformed ({e})") from None
    tables, paths = {}, {}
    for name in TABLES + OPTIONAL:  # a record's files only through its manifest (listed and verified)
        if name in OPTIONAL and not (listed(manifest, f"tables/{name}.csv") if manifest else (path / "tables" / f"{name}.csv").is_file()):
            tables[name] = pd.DataFrame()
            continue
        f = record_path(path, manifest, f"tables/{name}.csv") if manifest else path / "tables" / f"{name}.csv"
        if not f.is_file():
            raise RecordError(f"{f}: missing table")
        paths[name] = f
        try:
            tables[name] = pd.read_csv(f, dtype={"frequency": str}) if f.stat().st_size > 1 else pd.DataFrame()
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise RecordError(f"{f}: malformed table ({e})") from None
    if tables["accuracy"].empty:  # the contract passes empty tables; an empty accuracy table is no run at all
        raise RecordError(f"{path / 'tables/accuracy.csv'}: no rows (a run evaluates at least the dynamic DNN)")
    check_tables(tables, paths)
    facts = {b: dict(zip(d["fact"], d["value"])) for b, d in tables["boards"].groupby("board")} if not tables["boards"].empty else {}
    return Run(str(path), tables, config, facts, manifest)
