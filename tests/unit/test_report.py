"""Analysis and report rendering from small hand-built tables (no torch, no pipeline)."""

from __future__ import annotations

import math

import jinja2
import pandas as pd
import pytest

from dyndnn import analysis, plots
from dyndnn.report import build_context, render

ACC = pd.DataFrame(
    {
        "model": ["dynamic"] * 4,
        "groups": [1, 2, 3, 4],
        "width_pct": [25, 50, 75, 100],
        "top1": [0.5, 0.6, 0.65, 0.7],
        "confidence_sum": [50.0, 60, 65, 70],
        "confidence_norm": [50 / 70, 60 / 70, 65 / 70, 1.0],
        "macs": [10, 30, 60, 100],
        "macs_executed": [10, 40, 90, 160],
        "params": [1, 2, 3, 4],
        "weight_bytes": [4, 8, 12, 16],
        "n_images": [100] * 4,
    }
)


def samples(latencies: dict[int, list[float]]) -> pd.DataFrame:
    rows = [
        {"board": "b", "model": "dynamic", "groups": k, "mapping": "one-core", "frequency": "fixed", "run_idx": i, "latency_ms": v}
        for k, vs in latencies.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_dynamic_range():
    assert analysis.dynamic_range([2.0, 8.0, 4.0]) == 4.0
    assert math.isnan(analysis.dynamic_range([]))
    assert analysis.dynamic_range([0.0, 3.0, float("nan"), 6.0]) == 2.0  # zero and NaN are not operating points


def test_latency_summary_uses_raw_samples():
    s = analysis.latency_summary(samples({1: [1.0, 2.0, 3.0, 100.0], 4: [4.0] * 3}))
    row = s.set_index("groups").loc[1]
    assert row.n == 4 and row.p50_ms == 2.5 and row.p99_ms > 90
    assert analysis.latency_summary(pd.DataFrame()).empty


def test_scaling_table():
    lat = analysis.latency_summary(samples({1: [1.0], 2: [2.0], 3: [3.0], 4: [4.0]}))
    t = analysis.scaling_table(analysis.config_table(ACC, lat)).iloc[0]
    assert t.latency_small_over_full == 0.25 and t.macs_small_over_full == 0.1 and t.latency_dynamic_range == 4.0


def context(tmp_path, latency):
    png = tmp_path / "f.png"
    plots.save(plots.accuracy_per_config(ACC), str(tmp_path / "f.svg"), str(png))
    figures = {"accuracy": {"png": png, "caption": "c", "command": "snakemake x"}, "latency": {"png": png, "caption": "c", "command": "snakemake y"}}
    prov = {"git": {"commit": "abc", "dirty": False}, "config": {"model": {"groups": 4, "connectivity": "nested", "head": "sum", "conv_channels": [8, 8, 8, 8, 8], "fc_features": [8]}, "profile": {"min_runs": 1, "min_seconds": 0}}}
    dataset = {"source": "images", "splits": {"train": {"count": 10}, "test": {"count": 100, "sha256": "f" * 64}}}
    return build_context("T", ACC, latency, [], figures, prov, dataset)


@pytest.mark.parametrize("with_latency", [True, False])
def test_report_renders_with_and_without_boards(repo, tmp_path, with_latency):
    lat = samples({k: [float(k)] * 3 for k in range(1, 5)}) if with_latency else pd.DataFrame()
    html = render(repo / "report/templates/report.html.j2", context(tmp_path, lat))
    assert "data:image/png;base64," in html
    assert html.count("<tr>") >= 5
    assert ("No latency measurements" in html) != with_latency


def test_missing_variable_fails_the_build(repo, tmp_path):
    ctx = context(tmp_path, pd.DataFrame())
    del ctx["accuracy_rows"]
    with pytest.raises(jinja2.UndefinedError):
        render(repo / "report/templates/report.html.j2", ctx)
