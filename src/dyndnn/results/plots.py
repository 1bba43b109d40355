"""Figures: one function per figure, tables in, matplotlib Figure out (no torch, no I/O)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from dyndnn.results import latency  # noqa: E402
from dyndnn.results.analysis import DYNAMIC, NAIVE, pareto_mask, top_frequency  # noqa: E402

__all__ = ["theme", "PLOTS", "save"]


def theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)


def _empty(message: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def _configuration(df: pd.DataFrame) -> pd.Series:
    return (100 * df["groups"] / df.groupby("model")["groups"].transform("max")).round().astype(int).astype(str) + " %"


def _with_seeds(t: dict, mean: str, std: str, column: str) -> pd.DataFrame:
    """The accuracy table with `column` as the mean over training seeds and `<column>_std` as
    their standard deviation where the run has several seeds (else the primary seed's, std NaN)."""
    acc = t["accuracy"].copy()
    seeds = t.get("seed_summary")
    acc[f"{column}_std"] = float("nan")
    if seeds is not None and not seeds.empty and {mean, std, "n_seeds"} <= set(seeds):
        s = seeds[seeds.n_seeds > 1].set_index(["model", "groups"])
        hit = acc.set_index(["model", "groups"]).index.isin(s.index)
        keys = list(zip(acc.model[hit], acc.groups[hit]))
        acc.loc[hit, column] = s.loc[keys, mean].to_numpy()
        acc.loc[hit, f"{column}_std"] = s.loc[keys, std].to_numpy()
    return acc


def _legend_outside(ax) -> None:
    """The legend right of the axes, never over the bars or lines."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def fig2_top1(t: dict) -> plt.Figure:
    """Paper Fig. 2: top-1 per configuration, every technique (the mean over training seeds with
    their standard deviation as error bars, where the run has several), in percent on an axis
    that starts a little below the lowest usable configuration, so that steps of a few tenths of
    a point show; a configuration below the axis (a truncated model at chance) is labelled with
    its value at the bottom. With a reference record (report.reference), its top-1 as a black mark."""
    theme()
    if t["accuracy"].empty:
        return _empty("no accuracy results")
    acc = _with_seeds(t, "top1_mean", "top1_std", "top1")
    acc = acc.assign(configuration=_configuration(acc), pct=100 * acc.top1, pct_std=100 * acc.top1_std)
    fig, ax = plt.subplots(figsize=(7.8, 3.8))
    hue_order = list(dict.fromkeys(acc["model"]))
    order = sorted(acc["configuration"].unique(), key=lambda c: int(c.split()[0]))
    sns.barplot(acc, x="configuration", y="pct", hue="model", hue_order=hue_order, order=order, errorbar=None, ax=ax)
    usable = acc.pct[acc.top1 >= t.get("top1_floor", 0.0)]
    top = float((acc.pct + acc.pct_std.fillna(0)).max())
    low = max(0.0, float((usable - acc.pct_std.reindex(usable.index).fillna(0)).min() if len(usable) else 0.0) - 2.0)
    for model, bars in zip(hue_order, ax.containers):
        rows = acc[acc.model == model].set_index("configuration")
        for bar, conf in zip(bars, [c for c in order if c in rows.index]):
            x, r = bar.get_x() + bar.get_width() / 2, rows.loc[conf]
            if r.pct_std == r.pct_std:
                ax.errorbar(x, r.pct, yerr=r.pct_std, color="black", capsize=2, linewidth=1, zorder=3)
            if r.pct < low:
                ax.text(x, low + 0.2, f"{r.pct:.0f} %", ha="center", va="bottom", fontsize=7, rotation=90)
    ref = t.get("reference_accuracy")
    title = "Top-1 on the test images" + (" (mean +- std over seeds)" if acc.top1_std.notna().any() else "")
    if ref is not None and not ref.empty:
        _mark_reference_on_bars(ax, hue_order, ref.assign(configuration=_configuration(ref), top1=100 * ref.top1), "top1")
        title += "; black: the reference record"
    ax.set(ylabel="top-1 accuracy (%)", ylim=(low, min(100.0, top + 1.0)), title=title)
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def _mark_reference_on_bars(ax, hue_order: list[str], ref: pd.DataFrame, value: str) -> None:
    """A black mark at the reference's `value` on every bar whose (model, configuration) the
    reference has: bar containers come in hue order, each bar sits at its category's tick."""
    categories = [label.get_text() for label in ax.get_xticklabels()]
    want = ref.set_index(["model", "configuration"])[value]
    xs, ys = [], []
    for model, bars in zip(hue_order, ax.containers):
        for bar in bars:
            x = bar.get_x() + bar.get_width() / 2
            key = (model, categories[round(x)])
            if key in want.index:
                xs.append(x)
                ys.append(want[key])
    if xs:
        ax.scatter(xs, ys, marker="_", s=160, color="black", linewidths=2, zorder=3, label="reference record")


def fig3_confidence(t: dict) -> plt.Figure:
    """Paper Fig. 3: confidence of the correct class, normalised to the full model (the mean over
    training seeds with their standard deviation as error bars, where the run has several)."""
    theme()
    if t["accuracy"].empty:
        return _empty("no accuracy results")
    acc = _with_seeds(t, "confidence_mean", "confidence_std", "confidence_norm")
    fig, ax = plt.subplots(figsize=(7.8, 3.8))
    hue_order = list(dict.fromkeys(acc["model"]))
    sns.lineplot(acc, x="groups", y="confidence_norm", hue="model", hue_order=hue_order, marker="o", errorbar=None, ax=ax)
    colours = dict(zip(hue_order, sns.color_palette(n_colors=len(hue_order))))
    for model, g in acc[acc.confidence_norm_std.notna()].groupby("model"):
        ax.errorbar(g.groups, g.confidence_norm, yerr=g.confidence_norm_std, fmt="none", ecolor=colours[model], capsize=2, linewidth=1)
    ref = t.get("reference_accuracy")
    if ref is not None and not ref.empty:  # the reference record's curves, dashed, in the same colours
        ref = ref[ref["model"].isin(hue_order)]
        sns.lineplot(ref, x="groups", y="confidence_norm", hue="model", hue_order=hue_order, linestyle="--", legend=False, ax=ax)
        ax.plot([], [], "k--", label="reference record")
    title = "Confidence of the correct class" + (" (mean +- std over seeds)" if acc.confidence_norm_std.notna().any() else "")
    ax.set(xlabel="active groups", ylabel="confidence / full model", title=title)
    ax.set_xticks(sorted(acc["groups"].unique()))
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def fig4_latency(t: dict) -> plt.Figure:
    """Paper Fig. 4: single-image inference time per configuration, one panel per board and
    mapping (its highest DVFS level): the median of each point with its 95 % interval from the
    measurement's rounds (error bars), for the dynamic DNN in its shipped layout, the static dense
    models of the same widths and the dense-with-zeros layout (naive reference)."""
    theme()
    samples = t["latency_samples"]
    if samples.empty:
        return _empty("no latency measurements")
    d = top_frequency(latency.summary(samples))
    d = d.assign(configuration=_configuration(d))
    shown = [m for m in (DYNAMIC, "static", NAIVE) if m in set(d["model"])] or sorted(d["model"].unique())
    d = d[d.model.isin(shown)]
    panels = sorted({(b, m) for b, m in zip(d["board"], d["mapping"])})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    order = sorted(d["configuration"].unique(), key=lambda c: int(c.split()[0]))
    width = 0.8 / len(shown)
    for ax, (board, mapping) in zip(axes[0], panels):
        panel = d[(d.board == board) & (d.mapping == mapping)]
        for i, model in enumerate(shown):
            m = panel[panel.model == model].set_index("configuration").reindex(order)
            x = [j - 0.4 + width * (i + 0.5) for j in range(len(order))]
            lo, hi = (m.p50_ms - m.p50_lo_ms).clip(lower=0), (m.p50_hi_ms - m.p50_ms).clip(lower=0)
            label = f"{NAIVE} (naive layout)" if model == NAIVE else model
            ax.bar(x, m.p50_ms, width=width * 0.9, label=label, color=sns.color_palette()[i], alpha=0.8)
            ax.errorbar(x, m.p50_ms, yerr=[lo.fillna(0), hi.fillna(0)], fmt="none", ecolor="black", capsize=2, lw=0.8)
        ax.set_xticks(range(len(order)), order)
        ax.set(xlabel="configuration", ylabel="median latency per image (ms)", title=f"{board}: {mapping}", ylim=(0, None))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, svg: str, png: str) -> None:
    fig.savefig(svg)
    fig.savefig(png, dpi=150)
    plt.close(fig)


def fig5_tradeoffs(t: dict) -> plt.Figure:
    """Paper Fig. 5: energy, power and time against accuracy; marker = configuration,
    colour = mapping, every DVFS level a point; the Pareto front drawn per panel."""
    theme()
    pts = t["operating_points"]
    pts = pts[pts["model"] == DYNAMIC].dropna(subset=["top1"]) if not pts.empty else pts
    if pts.empty:
        return _empty("no operating points: no board was profiled")
    pts = pts.assign(configuration=_configuration(pts), where=pts["board"] + ": " + pts["mapping"])
    panels = [("energy_mj", "energy per inference (mJ)"), ("power_w", "mean power (W)"), ("p50_ms", "median latency (ms)")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (col, label) in zip(axes, panels):
        d = pts.dropna(subset=[col])
        if d.empty:
            ax.axis("off")
            ax.text(0.5, 0.5, f"{label}:\nnot measured on the boards used", ha="center", va="center")
            continue
        sns.scatterplot(d, x=col, y="top1", hue="where", style="configuration", s=70, ax=ax)
        if col != "power_w":  # power is not a cost to minimise on its own
            front = d[pareto_mask(d, col)].sort_values(col)
            ax.step(front[col], front["top1"], where="post", color="k", lw=1, label="Pareto front")
        ax.set(xlabel=label, ylabel="top-1", xscale="log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def dynamic_range(t: dict) -> plt.Figure:
    """Time and energy dynamic range per technique, configurations alone vs with mapping + DVFS."""
    theme()
    ranges = t["ranges"]
    if ranges.empty:
        return _empty("no operating points: no board was profiled")
    long = ranges.melt(
        id_vars=["board", "model", "metric"],
        value_vars=["range_configs_alone", "range_with_mapping_dvfs"],
        var_name="scope",
        value_name="range",
    )
    long["what"] = long["metric"].map({"p50_ms": "time", "energy_mj": "energy"}) + " (" + long["board"] + ")"
    g = sns.catplot(long, x="model", y="range", hue="scope", col="what", kind="bar", height=3.6, aspect=1.1)
    g.set_axis_labels("technique", "max / min")
    return g.figure


def memory_compression(t: dict) -> plt.Figure:
    """Resident memory against runtime-recoverable compression, per technique."""
    theme()
    fp = t["footprint"]
    if fp.empty:
        return _empty("no accuracy results")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    sns.scatterplot(fp.assign(resident_mb=fp.resident_bytes / 1e6), x="recoverable_compression", y="resident_mb", hue="model", s=90, ax=ax)
    ax.set(xlabel=f"runtime-recoverable compression (MACs full / smallest, top-1 >= {t['top1_floor']})", ylabel="resident memory (MB)")
    fig.tight_layout()
    return fig


def budget_trace(t: dict) -> plt.Figure:
    """Latency per step of every policy against the changing budget."""
    theme()
    runs = t.get("budget_trace", pd.DataFrame())
    if runs.empty:
        return _empty("no budget simulation: no board was profiled")
    policies = list(dict.fromkeys(runs["policy"]))
    fig, axes = plt.subplots(len(policies), 1, figsize=(10, 1.9 * len(policies)), sharex=True, sharey=True)
    for ax, policy in zip(axes, policies):
        d = runs[runs.policy == policy]
        ax.plot(d.step, d.latency_ms, lw=0.8, label="latency")
        ax.plot(d.step, d.budget_ms, "k--", lw=1, label="budget")
        ax.set(ylabel="ms", title=f"{policy}: {int(d.violation.sum())} violations, mean top-1 {d.top1.mean():.3f}", yscale="log")
    axes[-1].set_xlabel("step")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


PLOTS = {
    "fig2_top1": fig2_top1,
    "fig3_confidence": fig3_confidence,
    "fig4_latency": fig4_latency,
    "fig5_tradeoffs": fig5_tradeoffs,
    "dynamic_range": dynamic_range,
    "budget_trace": budget_trace,
    "memory_compression": memory_compression,
}
