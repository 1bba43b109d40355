"""A record in a few Markdown tables, for a README or a note: where it comes from (commit,
config files, sittings, host, precision), every technique's top-1 by configuration (the mean
over its training seeds) with its MACs and resident bytes, every claim's verdict, and the wall
time per rule. Every number is read from the record's verified files; nothing is typed by hand.

The README's numbers of a shipped record live in blocks the same code writes:

    <!-- record reference/main: accuracy -->
    ...
    <!-- end record -->

`update_readme` renders every block that names a record (`BLOCKS`: provenance, accuracy, jobs,
claims, targets, wall, baselines) and rewrites it, or with `check` lists the stale ones; a test keeps the
README's blocks equal to the shipped records."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import yaml

from dyndnn.provenance import write_atomic
from dyndnn.results.analysis import pooled_std
from dyndnn.results.claims import WITHIN_NOISE, evaluate_claims, shown_reason, shown_verdict
from dyndnn.results.existing_works import claim_baselines
from dyndnn.results.record import RecordError, record_path
from dyndnn.results.runs import load_run

__all__ = ["BLOCK", "BLOCKS", "MAIN_JOB_TARGETS", "summarize", "update_readme"]


def _md(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (cells as given)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |\n| " + " | ".join("---" for _ in df.columns) + " |\n"
    return head + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def _provenance(path: Path, manifest: dict) -> str:
    sittings = manifest.get("sittings") or []
    host = manifest.get("host") or {}
    lines = [
        f"Record `{path}`: commit {manifest.get('git_commit')} ({'dirty' if manifest.get('git_dirty') else 'clean'}), "
        f"config files {', '.join(manifest.get('configfiles') or []) or '(config.yaml only)'}; wall time {manifest.get('wall_s')} s "
        f"in {len(sittings)} sitting(s); host {host.get('cpu_model', '?')} ({host.get('cpu_identity') or 'CPU identity unknown'}); "
        f"training precision {manifest.get('precision')}.",
        "",
    ]
    if manifest.get("config"):
        lines[1:1] = ["", _recipe(manifest["config"])]
    if sittings:
        rows = pd.DataFrame(
            [
                [
                    s.get("started"),
                    s.get("finished"),
                    s.get("wall_s"),
                    _short_commit(s),
                    s.get("node"),
                    "bf16" if s.get("native_bf16") else "fp32",
                    s.get("outcome", ""),
                ]
                for s in sittings
            ],
            columns=["started", "finished", "wall_s", "commit", "node", "native precision", "outcome"],
        )
        lines.append(_md(rows))
    return "\n".join(lines)


def _short_commit(sitting: dict) -> str:
    """The commit a sitting ran, short ('not recorded' for sittings before commits were kept)."""
    commit = sitting.get("commit")
    if not commit:
        return "not recorded"
    return commit[:7] + (" (dirty)" if sitting.get("dirty") else "")  # "unknown" outside git


def _recipe(config: dict) -> str:
    """What of the record's config decides its numbers, in one line."""
    data, train, model = config.get("data", {}), config.get("train", {}), config.get("model", {})
    seeds = config.get("seeds") or [config.get("seed", 0)]
    subset = lambda n: "all" if n is None else f"{n:,}"  # noqa: E731
    kd = train.get("distill") or 0
    slashed = lambda values: " / ".join(map(str, values))  # noqa: E731
    stages, stage_lr = train.get("stage_epochs"), train.get("stage_lr")
    budget = f"{train.get('epochs')} epochs per " + (
        f"baseline, {slashed(stages)} per incremental stage" if stages else "technique and stage"
    )
    budget += f", stages' peak lr {slashed(stage_lr)}" if stage_lr else ""
    return (
        f"Config: data {data.get('source')} ({subset(data.get('train_subset'))} training / {subset(data.get('test_subset'))} test images); "
        f"{model.get('groups')} groups, connectivity {model.get('connectivity')}, head {model.get('head')}; "
        f"{budget}, batch {train.get('batch_size')}, {train.get('schedule')} schedule "
        f"to lr {train.get('lr')}, label smoothing {train.get('label_smoothing')}, "
        + (f"distillation {kd} (T {train.get('distill_temperature')})" if kd else "no distillation")
        + f", precision {train.get('precision')}; seeds {', '.join(map(str, seeds))}."
    )


def _accuracy(run) -> str:
    acc = run.tables["accuracy"]
    seeds = run.tables.get("seed_summary", pd.DataFrame())
    out = acc[["model", "groups", "top1", "macs", "resident_bytes"]].copy()
    if not seeds.empty:
        out = out.drop(columns="top1").merge(
            seeds[["model", "groups", "n_seeds", "top1_mean", "top1_std"]], on=["model", "groups"], how="left"
        )
        out["top-1 % (mean over seeds)"] = (100 * out.top1_mean).map("{:.2f}".format)
        out["seed std (pts)"] = (100 * out.top1_std).map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
        out = out.drop(columns=["top1_mean", "top1_std"])
    else:
        out["top-1 %"] = (100 * out.pop("top1")).map("{:.2f}".format)
    out["MMACs"] = (out.pop("macs") / 1e6).map("{:.1f}".format)
    out["resident MB"] = (out.pop("resident_bytes") / 1e6).map("{:.2f}".format)
    return _md(out)


def _claims(run) -> str:
    claims_file = run.claims_file()
    if claims_file is None:
        return "(the record ships no claims file)\n"
    claims = yaml.safe_load(claims_file.read_text())["claims"]
    verdicts = evaluate_claims(claims, {**run.tables, "top1_floor": run.top1_floor})
    verdicts["verdict"] = [shown_verdict(v, n) for v, n in zip(verdicts.verdict, verdicts.noise)]
    verdicts["reason"] = [shown_reason(r, n) for r, n in zip(verdicts.reason, verdicts.noise)]
    shown = verdicts[["id", "paper", "ours", "unit", "verdict", "reason"]].copy()
    shown["ours"] = shown["ours"].map(_value)
    shown["reason"] = shown["reason"].map(lambda r: str(r).replace("|", "/"))
    return _md(shown)


def _baselines(run) -> str:
    """The claims against existing works, baseline by baseline, with and without the floor."""
    claims_file = run.claims_file()
    if claims_file is None:
        return "(the record ships no claims file)\n"
    per = claim_baselines(yaml.safe_load(claims_file.read_text())["claims"], {**run.tables, "top1_floor": run.top1_floor})
    if per.empty:
        return "(no claim against existing works could be computed from this record)\n"
    for col in ("ours_all", "theirs_all", "ratio_all", "ours_floor", "theirs_floor", "ratio_floor"):
        per[col] = per[col].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}")
    return _md(per)


def _value(v) -> str:
    """A claim's value as the report prints it: numbers to 3 significant digits, lists joined."""
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:.3g}"
    return "-" if v is None else str(v)


NO_JOB_TIMES = "(no job times in this record)\n"


def _read_job_times(path: Path, manifest: dict) -> pd.DataFrame | None:
    """The record's tables/job_times.csv (None where it ships none, or an empty one)."""
    f = record_path(path, manifest, "tables/job_times.csv", required=False)
    return None if f is None or f.stat().st_size <= 1 else pd.read_csv(f, keep_default_na=False)


def _job_times(path: Path, manifest: dict) -> str:
    jobs = _read_job_times(path, manifest)
    if jobs is None:
        return NO_JOB_TIMES
    per_rule = jobs.groupby("job", sort=False).agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), max_rss_mb=("max_rss_mb", "max"))
    per_rule = per_rule.reset_index()
    per_rule["wall_s"] = per_rule.wall_s.map("{:.0f}".format)
    per_rule["max_rss_mb"] = per_rule.max_rss_mb.map("{:.0f}".format)
    return _md(per_rule)


def _load_record(path: Path):
    """The record at `path`, verified against its manifest; a results folder is refused."""
    run = load_run(path)
    if run.manifest is None:
        raise RecordError(f"{path}: not a record (no manifest.json): summarize a record, e.g. reference/quick")
    return run


def summarize(path: str | Path) -> str:
    """The record at `path` (verified against its manifest) as Markdown."""
    path = Path(path)
    run = _load_record(path)
    return "\n".join(
        [
            _provenance(path, run.manifest),
            "Top-1 on the test images by technique and configuration:\n",
            _accuracy(run),
            "Claims:\n",
            _claims(run),
            "Wall time per rule (the jobs' benchmark files):\n",
            _job_times(path, run.manifest),
        ]
    )


# The main job's targets (issue 25): what `targets` checks a record against.
MAIN_JOB_TARGETS = {"wall_s": 9000.0, "static_top1": 0.85, "dynamic_gap_pts": 1.5}
LABELS = {"dynamic": "dynamic (ours)", "static": "static (one dense model per width)"}


def _top1(run) -> pd.Series:
    """Top-1 by (model, groups): the mean over the record's seeds."""
    seeds = run.tables.get("seed_summary", pd.DataFrame())
    if not seeds.empty:
        return seeds.set_index(["model", "groups"]).top1_mean
    return run.tables["accuracy"].groupby(["model", "groups"]).top1.mean()


def _n_seeds(run) -> int:
    """How many training seeds the record's top-1 rests on (its accuracy table holds the primary
    seed only; the seed summary counts them all)."""
    seeds = run.tables.get("seed_summary", pd.DataFrame())
    if not seeds.empty and "n_seeds" in seeds:
        return int(seeds.n_seeds.min())
    return int(run.tables["accuracy"].get("seed", pd.Series([0])).nunique())


def _top1_std(run) -> pd.Series | None:
    """The seed standard deviation of top-1 by (model, groups); None with one seed."""
    seeds = run.tables.get("seed_summary", pd.DataFrame())
    if seeds.empty or "top1_std" not in seeds or _n_seeds(run) < 2:
        return None
    return seeds.set_index(["model", "groups"]).top1_std


def _width(run, model: str, groups: int) -> str:
    acc = run.tables["accuracy"]
    return f"{acc[(acc.model == model) & (acc.groups == groups)].width_pct.iloc[0]:g}"


def _block_accuracy(run) -> str:
    """One row per technique: top-1 at every configuration, MACs, resident MB."""
    acc = run.tables["accuracy"]
    top1 = _top1(run)
    first = acc[acc.model == acc.model.iloc[0]].drop_duplicates("groups").sort_values("groups")
    widths = " / ".join(f"{w:g}" for w in first.width_pct)
    seeds = _n_seeds(run)
    header = f"top-1 (%) at {widths} %" + (f" (mean +- std of {seeds} seeds)" if seeds > 1 else "")
    std = _top1_std(run)
    cell = lambda model, k: f"{100 * top1[(model, k)]:.2f}" + ("" if std is None else f" +- {100 * std[(model, k)]:.2f}")  # noqa: E731
    macs = {m: tuple(g.drop_duplicates("groups").sort_values("groups").macs) for m, g in acc.groupby("model", sort=False)}
    finetune = (run.config.get("baselines", {}).get("pruned") or {}).get("finetune_epochs")
    labels = {**LABELS, "pruned": f"pruned (L1 + {finetune} fine-tuning epochs)" if finetune else "pruned"}
    rows = []
    for model, g in acc.groupby("model", sort=False):
        groups = sorted(g.groups.unique())
        same = model != "static" and macs.get("static") == macs[model]
        rows.append(
            [
                labels.get(model, model),
                " / ".join(cell(model, k) for k in groups),
                "same as static" if same else " / ".join(f"{m / 1e6:.1f}" for m in macs[model]),
                f"{g.resident_bytes.max() / 1e6:.1f}",
            ]
        )
    return _md(pd.DataFrame(rows, columns=["technique", header, "MMACs", "resident MB"]))


def _block_jobs(path: Path, run) -> str:
    """Wall time per job (the jobs' benchmark files), a rule's targets side by side."""
    jobs = _read_job_times(path, run.manifest)
    if jobs is None:
        return NO_JOB_TIMES
    one_seed = _n_seeds(run) == 1
    rows = []
    for rule, g in jobs.groupby("job", sort=False):
        targets = [str(t).split("/")[-1] if one_seed else str(t) for t in g.target]
        each = len(g) <= 5 and len(g) > 1
        rows.append(
            [
                rule,
                " / ".join(targets) if each else (targets[0] if len(g) == 1 else f"{len(g)} jobs"),
                " / ".join(f"{w:,.0f}" for w in g.wall_s) if each else "",
                f"{g.wall_s.sum():,.0f}",
            ]
        )
    rows.append(["all jobs", f"{len(jobs)} jobs", "", f"{jobs.wall_s.sum():,.0f}"])
    return _md(pd.DataFrame(rows, columns=["job", "targets", "wall s each", "wall s"]))


def _spread(run, model: str) -> float:
    """A technique's seed std of top-1 in points, pooled over its configurations (NaN with one seed)."""
    s = run.tables.get("seed_summary", pd.DataFrame())
    mine = s[(s.model == model) & (s.n_seeds > 1)] if not s.empty and "n_seeds" in s else s.iloc[0:0]
    return 100 * pooled_std(mine, "top1_std")


def _block_targets(run) -> str:
    """The main job's targets (MAIN_JOB_TARGETS) against this record: top-1 as the mean over seeds
    +- the technique's pooled seed std, and "within noise" where the margin is smaller than it."""
    t = MAIN_JOB_TARGETS
    top1 = _top1(run)
    sittings = run.manifest.get("sittings") or []
    bf16 = bool(sittings) and all(s.get("native_bf16") for s in sittings)
    wall = float(run.manifest.get("wall_s") or 0)
    n_seeds = len((run.config or {}).get("seeds") or [0])
    verdict = lambda ok: "holds" if ok else "missed"  # noqa: E731
    rows = [
        [
            "wall time (AVX512_BF16 host)",
            f"at most {t['wall_s']:,.0f} s in one sitting",
            f"{wall:,.0f} s in {len(sittings)} sitting(s), {'bf16' if bf16 else 'fp32 (not an AVX512_BF16 host)'}",
            "not applicable (a target for one seed)"
            if n_seeds > 1
            else verdict(wall <= t["wall_s"] and len(sittings) == 1)
            if bf16
            else "not applicable",
        ]
    ]
    models = {m for m, _ in top1.index}
    if {"static", "dynamic"} <= models:
        static = top1["static"].sort_index()
        dyn = top1["dynamic"].sort_index()
        s_top, d_top = static.iloc[-1], dyn.iloc[-1]
        gap = 100 * (s_top - d_top)
        steps = 100 * dyn.diff().dropna()
        s_std, d_std = _spread(run, "static"), _spread(run, "dynamic")  # points; NaN with one seed
        pm = lambda std: f" +- {std:.2f}" if std == std else ""  # noqa: E731
        judged = lambda ok, margin, std: verdict(ok) + (WITHIN_NOISE if std == std and abs(margin) < std else "")  # noqa: E731
        rows += [
            [
                f"static {_width(run, 'static', static.index[-1])} % model",
                f"top-1 at least {100 * t['static_top1']:.2f} %",
                f"{100 * s_top:.2f}{pm(s_std)} %",
                judged(s_top >= t["static_top1"], 100 * (s_top - t["static_top1"]), s_std),
            ],
            [
                f"dynamic DNN, {dyn.index[-1]} groups",
                f"within {t['dynamic_gap_pts']} points of the static 100 % model",
                f"{100 * d_top:.2f}{pm(d_std)} % ({abs(gap):.2f} points {'below' if gap >= 0 else 'above'})",
                judged(gap <= t["dynamic_gap_pts"], gap - t["dynamic_gap_pts"], (s_std**2 + d_std**2) ** 0.5),
            ],
            [
                "dynamic DNN, each added group",
                "top-1 rises",
                " / ".join(f"{100 * v:.2f}" for v in dyn) + " (" + ", ".join(f"{v:+.2f}" for v in steps) + ")",
                judged(bool((steps > 0).all()), steps.abs().min(), d_std),
            ],
        ]
    return _md(pd.DataFrame(rows, columns=["target", "goal", "measured", "verdict"]))


def _block_wall(path: Path, run) -> str:
    """One line for a requirements table: how long the record's run took, where, and its largest
    job's resident memory."""
    m, host = run.manifest, run.manifest.get("host") or {}
    wall, sittings = float(m.get("wall_s") or 0), m.get("sittings") or []
    jobs = _read_job_times(path, m)
    rss = f"; largest job {jobs.max_rss_mb.max() / 1024:.1f} GiB resident" if jobs is not None else ""
    precision = "bf16" if any(s.get("native_bf16") for s in sittings) else "fp32"
    return (
        f"{wall:,.0f} s ({f'{wall / 3600:.1f} h' if wall >= 3600 else f'{wall / 60:.1f} min'}) in {len(sittings)} sitting(s) at commit {str(m.get('git_commit'))[:7]}, "
        f"{str(m.get('started', ''))[:10]}, on {host.get('cpu_model', '?')} (vendor {host.get('cpu_vendor', '?')} family "
        f"{host.get('cpu_family', '?')} model {host.get('cpu_model_id', '?')}, {host.get('cpu_logical', '?')} logical CPUs, "
        f"training in {precision}){rss}.\n"
    )


# name -> render(record folder, its Run, the record as the README names it)
BLOCKS = {
    "provenance": lambda path, run, label: _provenance(Path(label), run.manifest),
    "accuracy": lambda path, run, label: _block_accuracy(run),
    "jobs": lambda path, run, label: _block_jobs(path, run),
    "claims": lambda path, run, label: _claims(run),
    "targets": lambda path, run, label: _block_targets(run),
    "wall": lambda path, run, label: _block_wall(path, run),
    "baselines": lambda path, run, label: _baselines(run),
}
BLOCK = re.compile(r"(?P<open><!-- record (?P<record>\S+): (?P<name>\S+) -->\n)(?P<body>.*?)(?P<close><!-- end record -->)", re.S)


def update_readme(readme: str | Path, record: str | Path, check: bool = False) -> list[str]:
    """Render every block of `readme` that names `record` (a path relative to the README's
    folder) from the verified record and rewrite them (atomically); with `check`, write
    nothing. Returns the names of the blocks that were (or, with check, are) stale."""
    readme, record = Path(readme), Path(record)
    text = readme.read_text()
    mine = [m for m in BLOCK.finditer(text) if (readme.parent / m["record"]).resolve() == record.resolve()]
    if not mine:
        raise ValueError(f"{readme}: no block names {record} (<!-- record {record}: NAME --> ... <!-- end record -->)")
    unknown = sorted({m["name"] for m in mine} - set(BLOCKS))
    if unknown:
        raise ValueError(f"{readme}: unknown block(s) {', '.join(unknown)} for {record} (known: {', '.join(BLOCKS)})")
    run = _load_record(record)
    stale, out, at = [], [], 0
    for m in mine:
        body = BLOCKS[m["name"]](record, run, m["record"])
        body = body if body.endswith("\n") else body + "\n"
        if body != m["body"]:
            stale.append(m["name"])
        out += [text[at : m.start("body")], body]
        at = m.end("body")
    if stale and not check:
        write_atomic(readme, "".join(out) + text[at:])
    return stale
