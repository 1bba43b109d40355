"""The HTML report: a Jinja2 template rendered from the aggregated tables.

Scope: turn tables, figures and provenance into a template context and render
it with StrictUndefined, so a missing number fails the build instead of
printing an empty cell. Numbers are computed in `analysis`; this module only
formats them. Figures are embedded, so index.html is one self-contained file.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import jinja2
import pandas as pd

from dyndnn import analysis

__all__ = ["render", "build_context", "write_report"]


def render(template_path: str | Path, context: dict) -> str:
    template_path = Path(template_path)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_path.parent),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    return env.get_template(template_path.name).render(**context)


def fmt(value, digits: int = 3) -> str:
    """A table cell: '-' for missing values, thousands separators for integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int,)) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def records(df: pd.DataFrame, columns: list[str]) -> list[dict]:
    return [{c: fmt(v) for c, v in zip(columns, row)} for row in df[columns].itertuples(index=False)]


def embed_png(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def layer_rows(model: dict) -> list[dict]:
    """The exact layer sizes of the grouped AlexNet, per configuration (pure: from the config)."""
    G, size = model["groups"], model.get("image_size", 32)
    rows = []
    for i, c in enumerate(model["conv_channels"]):
        pool = i in (0, 1, 4)
        rows.append({"layer": f"conv{i + 1}", "type": "conv 3x3/1 pad 1 + BN + ReLU" + (" + maxpool 2" if pool else ""), "output": f"{size // 2 if pool else size}x{size // 2 if pool else size}", "widths": [c * k // G for k in range(1, G + 1)]})
        size = size // 2 if pool else size
    for i, f in enumerate(model["fc_features"]):
        rows.append({"layer": f"fc{i + 1}", "type": "linear + ReLU + dropout", "output": "1", "widths": [f * k // G for k in range(1, G + 1)]})
    rows.append({"layer": "head", "type": "linear (" + model["head"] + ")", "output": "1", "widths": [10] * G})
    return rows


def build_context(title: str, accuracy: pd.DataFrame, samples: pd.DataFrame, boards: list[dict], figures: dict[str, dict], provenance: dict, dataset: dict) -> dict:
    """Everything the template shows. `figures`: name -> {png, caption, command}."""
    latency = analysis.latency_summary(samples)
    table = analysis.config_table(accuracy, latency)
    scaling = analysis.scaling_table(table) if not latency.empty else pd.DataFrame()
    acc_cols = ["model", "groups", "width_pct", "top1", "confidence_norm", "macs", "macs_executed", "params", "weight_bytes", "n_images"]
    lat_cols = ["board", "model", "groups", "mapping", "frequency", "n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms"]
    scale_cols = ["board", "model", "mapping", "latency_small_over_full", "macs_small_over_full", "latency_dynamic_range", "top1_small", "top1_full"]
    missing = []
    if accuracy.empty:
        missing.append("No accuracy results: the evaluate rule produced no rows.")
    if latency.empty:
        missing.append("No latency measurements: no board was profiled.")
    return {
        "title": title,
        "layers": layer_rows(provenance["config"]["model"]) if "model" in provenance.get("config", {}) else [],
        "accuracy_columns": acc_cols,
        "accuracy_rows": records(accuracy, acc_cols) if not accuracy.empty else [],
        "latency_columns": lat_cols,
        "latency_rows": records(latency, lat_cols),
        "scaling_columns": scale_cols,
        "scaling_rows": records(scaling, scale_cols) if not scaling.empty else [],
        "figures": {name: {**f, "src": embed_png(f["png"])} for name, f in figures.items()},
        "boards": boards,
        "provenance": provenance,
        "provenance_json": json.dumps(provenance, indent=2, default=str),
        "dataset": dataset,
        "missing": missing,
    }


def write_report(template_path: str | Path, context: dict, out_html: str | Path) -> None:
    html = render(template_path, context)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html)
    tmp.replace(out)


FIGURES = {
    "accuracy": "Top-1 accuracy and normalised confidence per configuration.",
    "latency": "Single-image inference time per configuration, mapping and board (log scale).",
}


def report_from_files(inputs: dict, out_html: str, title: str) -> None:
    """Load the aggregated tables named in `inputs` and render the report."""
    from dyndnn.provenance import read_meta

    accuracy = pd.read_csv(inputs["accuracy"])
    samples = pd.read_csv(inputs["samples"])
    facts = pd.read_csv(inputs["boards"], dtype=str, keep_default_na=False)
    boards = [{"board": b, "facts": dict(zip(d["fact"], d["value"]))} for b, d in facts.groupby("board")]
    figures = {
        name: {"png": inputs[f"{name}_png"], "caption": caption, "command": f"snakemake --forcerun figure_{name} -- results/figures/{name}.svg"}
        for name, caption in FIGURES.items()
    }
    meta = read_meta(inputs["accuracy"])
    dataset = json.loads(Path(inputs["dataset"]).read_text())
    write_report(inputs["template"], build_context(title, accuracy, samples, boards, figures, meta, dataset), out_html)
