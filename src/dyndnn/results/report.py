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

from dyndnn.arch import POOL_AFTER
from dyndnn.provenance import read_meta, write_atomic
from dyndnn.results import analysis
from dyndnn.results.claims import FAILS, HOLDS, NOT_MEASURABLE, evaluate_claims, shown_reason, shown_verdict
from dyndnn.results.compare import DIFFERS, INCONCLUSIVE, NOT_COMPARABLE, REPRODUCED, compare
from dyndnn.results.existing_works import COLUMNS as CLAIM_BASELINE_COLUMNS
from dyndnn.results.existing_works import claim_baselines
from dyndnn.results.figures import FIGURES
from dyndnn.results.record import RecordError
from dyndnn.results.runs import TABLES, Run, load_run
from dyndnn.results.sections import SECTIONS, TABLE_SECTIONS, figure_tables, load_tables

__all__ = [
    "render",
    "build_context",
    "write_report",
    "load_warnings",
    "report_from_files",
]


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
        return f"{value:.{digits}g}" if abs(value) < 10**digits - 0.5 else f"{value:,.0f}"  # 6971.5 -> 6,972, not 6.97e+03
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
        pool = i in POOL_AFTER
        rows.append(
            {
                "layer": f"conv{i + 1}",
                "type": "conv 3x3/1 pad 1 + BN + ReLU" + (" + maxpool 2" if pool else ""),
                "output": f"{size // 2 if pool else size}x{size // 2 if pool else size}",
                "widths": [c * k // G for k in range(1, G + 1)],
            }
        )
        size = size // 2 if pool else size
    for i, f in enumerate(model["fc_features"]):
        rows.append(
            {"layer": f"fc{i + 1}", "type": "linear + ReLU + dropout", "output": "1", "widths": [f * k // G for k in range(1, G + 1)]}
        )
    rows.append({"layer": "head", "type": "linear (" + model["head"] + ")", "output": "1", "widths": [10] * G})
    return rows


def technique_table(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Technique x configuration, our dynamic DNN first."""
    if accuracy.empty:
        return accuracy
    return (
        accuracy.assign(baseline=accuracy.model.ne(analysis.DYNAMIC)).sort_values(["baseline", "model", "groups"]).drop(columns="baseline")
    )


def _table(df: pd.DataFrame, columns: list[str]) -> dict:
    cols = [c for c in columns if c in df.columns]
    return {"columns": cols, "rows": records(df, cols) if not df.empty else []}


def claim_rows(claims: pd.DataFrame) -> list[dict]:
    def ours(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, list):
            return " / ".join(f"{x:.4g}" for x in v)
        if isinstance(v, bool):
            return "yes" if v else "no"
        return fmt(v)

    return [
        {
            "id": r.id,
            "claim": r.claim,
            "source": r.source,
            "paper": f"{r.paper} {r.unit}".strip(),
            "ours": ours(r.ours),
            "verdict": shown_verdict(r.verdict, getattr(r, "noise", "")),
            "verdict_class": r.verdict.replace(" ", "-"),
            "reason": shown_reason(r.reason, getattr(r, "noise", "")),
        }
        for r in claims.itertuples(index=False)
    ]


def build_context(
    title: str,
    tables: dict,
    claims: pd.DataFrame,
    boards: list[dict],
    figures: dict[str, dict],
    provenance: dict,
    dataset: dict,
    claim_list: list[dict] = (),
) -> dict:
    """Everything the template shows. `figures`: name -> {png, caption, command}; `claim_list`:
    the claims file's claims (their rules make the table of claims against existing works)."""
    per_figure = figure_tables(tables)
    sections = []
    for name, (heading, columns) in SECTIONS.items():
        f = figures.get(name)
        sections.append(
            {
                "name": name,
                "heading": heading,
                "figure": {**f, "src": embed_png(f["png"])} if f else None,
                "table": _table(per_figure[name], columns),
            }
        )
    missing = []
    if tables["accuracy"].empty:
        missing.append("No accuracy results: the evaluate rule produced no rows.")
    if tables["latency_samples"].empty:
        missing.append("No latency measurements: no board was profiled.")
    if not tables["operating_points"].empty and tables["operating_points"]["energy_mj"].isna().all():
        missing.append("No energy or power: no readable power sensor on the boards used (see each board's power_note).")
    if not tables["accuracy"].empty and set(tables["accuracy"]["model"]) == {analysis.DYNAMIC}:
        missing.append(
            "No existing-work baselines (static, slimmable, truncated, pruned) in this run: the comparisons against them are not measurable."
        )
    counts = claims["verdict"].value_counts().to_dict() if not claims.empty else {}
    derived = {**tables, "techniques": technique_table(tables["accuracy"])}
    return {
        "title": title,
        "layers": layer_rows(provenance["config"]["model"]) if "model" in provenance.get("config", {}) else [],
        "claims": claim_rows(claims),
        "claim_baselines": _table(claim_baselines(list(claim_list), tables), CLAIM_BASELINE_COLUMNS),
        "verdict_counts": {v: counts.get(v, 0) for v in (HOLDS, FAILS, NOT_MEASURABLE)},
        "sections": sections,
        "table_sections": [
            {"name": name, "heading": heading, "text": text, "empty": empty, "table": _table(derived.get(name, pd.DataFrame()), columns)}
            for name, (heading, columns, text, empty) in TABLE_SECTIONS.items()
        ],
        "boards": boards,
        "provenance": provenance,
        "provenance_json": json.dumps(provenance, indent=2, default=str),
        "dataset": dataset,
        "missing": missing,
        "warnings": [],
        "top1_floor": tables["top1_floor"],
    }


def write_report(template_path: str | Path, context: dict, out_html: str | Path) -> None:
    write_atomic(out_html, render(template_path, context))


def regenerate_command(name: str, configfiles: list[str]) -> str:
    cfg = "".join(f" --configfile {c}" for c in configfiles)
    return f"snakemake --cores all{cfg} --forcerun figure_{name} -- results/figures/{name}.svg"


def load_warnings(
    boards: list[dict],
    max_others_share: float,
    samples: pd.DataFrame | None = None,
    max_median_spread: float = 0.1,
    control: pd.DataFrame | None = None,
    max_control_spread: float = 0.05,
) -> list[str]:
    """One line per board whose measurement shared its CPUs with other processes beyond
    `max_others_share` (profile.max_others_share), per board whose points' medians moved
    by more than `max_median_spread` within their own runs (thirds of the timed runs), and per
    board where techniques running the same graph differ by more than `max_control_spread`
    (the negative control): its latencies may be inflated or unstable."""
    out = []
    if control is not None and not control.empty:
        for board, g in control[control.spread > max_control_spread].groupby("board"):
            worst = g.loc[g.spread.idxmax()]
            out.append(f"Board {board}: techniques that run the same graph differ in median latency by more than {max_control_spread:.0%} at "
                       f"{len(g)} of {int((control.board == board).sum())} configurations (profile.max_control_spread; worst {worst.spread:.0%}: "
                       f"{worst.techniques} g{worst.groups} on {worst.mapping}); differences between techniques below that are the instrument's.")  # fmt: skip
    if samples is not None and not samples.empty:
        spread = analysis.median_spread(samples)
        for board, g in spread[spread.median_spread > max_median_spread].groupby("board"):
            worst = g.loc[g.median_spread.idxmax()]
            out.append(f"Board {board}: the median latency of {len(g)} of {int((spread.board == board).sum())} points moved by more than {max_median_spread:.0%} "
                       f"between thirds of their own runs (profile.max_median_spread; worst {worst.median_spread:.0%}: {worst.model} g{worst.groups} on {worst.mapping}); "
                       "the host was not steady while measured.")  # fmt: skip
    for b in boards:
        share = b["facts"].get("host_others_cpu_share")
        try:
            share = float(share)
        except (TypeError, ValueError):
            continue
        if share > max_others_share:
            load = b["facts"].get("host_load_avg", "")
            out.append(f"Board {b['board']} was busy while measured: other processes took {share:.0%} of its CPU time (load averages {load}; "
                       f"threshold profile.max_others_share {max_others_share:.0%}); its latencies and the claims built on them may be inflated.")  # fmt: skip
    return out


def reference_context(
    reference: str | Path, claims: list[dict], tables: dict, boards: list[dict], config: dict, ours: pd.DataFrame
) -> tuple[dict, list[dict]]:
    """The reference record set beside this run: per claim its verdict and value there and
    whether ours reproduces it, and the rows of `dyndnn compare` that did not reproduce."""
    ref = load_run(reference)
    if ref.manifest is None:
        raise RecordError(f"report.reference {reference}: not a record (no manifest.json)")
    manifest = ref.manifest
    run = Run(
        "this run",
        {name: tables.get(name, pd.DataFrame()) for name in TABLES},
        config,
        {b["board"]: b["facts"] for b in boards},
    )
    rows = compare(ref, run, claims)
    by_claim = rows[rows.kind == "claim"].set_index("key")
    per_claim = {}
    for cid in ours["id"]:
        if cid in by_claim.index:
            r = by_claim.loc[cid]
            per_claim[cid] = {"reference": r["reference"], "vs_reference": r["status"] + (f": {r['reason']}" if r["reason"] else "")}
    counts = rows.status.value_counts()
    shown = rows[rows.status != REPRODUCED]
    host = manifest.get("host", {})
    return {
        "path": str(reference),
        "commit": str(manifest.get("git_commit", "unknown"))[:10],
        "host": f"{host.get('cpu_model', 'unknown host')}, {host.get('cores', '?')} cores",
        "counts": {
            "reproduced": int(counts.get(REPRODUCED, 0)),
            "differs": int(counts.get(DIFFERS, 0)),
            "inconclusive": int(counts.get(INCONCLUSIVE, 0)),
            "not_comparable": int(counts.get(NOT_COMPARABLE, 0)),
        },
        "table": {"columns": list(shown.columns), "rows": records(shown, list(shown.columns)) if not shown.empty else []},
    }, per_claim


def report_from_files(
    inputs: dict,
    out_html: str,
    title: str,
    top1_floor: float,
    configfiles: list[str] = (),
    max_others_share: float = 0.25,
    reference: str | None = None,
    max_median_spread: float = 0.1,
    max_control_spread: float = 0.05,
) -> None:
    """Load the aggregated tables named in `inputs`, evaluate the claims, render the report."""
    import yaml

    tables = load_tables(inputs, top1_floor, reference)
    facts = pd.read_csv(inputs["boards"], dtype=str, keep_default_na=False)
    boards = [{"board": b, "facts": dict(zip(d["fact"], d["value"]))} for b, d in facts.groupby("board")]
    pngs = {Path(p).stem: p for p in ([inputs["figures"]] if isinstance(inputs["figures"], str) else inputs["figures"])}
    figures = {
        name: {"png": pngs[name], "caption": caption, "command": regenerate_command(name, configfiles)}
        for name, caption in FIGURES.items()
        if name in pngs
    }
    claim_list = yaml.safe_load(Path(inputs["claims"]).read_text())["claims"]
    claims = evaluate_claims(claim_list, tables)
    dataset = json.loads(Path(inputs["dataset"]).read_text())
    context = build_context(title, tables, claims, boards, figures, read_meta(inputs["accuracy"]), dataset, claim_list)
    context["warnings"] = load_warnings(
        boards, max_others_share, tables["latency_samples"], max_median_spread, tables.get("latency_control"), max_control_spread
    )
    if reference:
        context["reference"], per_claim = reference_context(
            reference, claim_list, tables, boards, context["provenance"].get("config", {}), claims
        )
        for c in context["claims"]:
            c.update(per_claim.get(c["id"], {"reference": "-", "vs_reference": "not in the reference"}))
    write_report(inputs["template"], context, out_html)
