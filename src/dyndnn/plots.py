"""Figures: one function per figure, tables in, matplotlib Figure out (no torch, no I/O)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

__all__ = ["theme", "accuracy_per_config", "latency_per_config", "save"]


def theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)


def _empty(message: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def accuracy_per_config(accuracy: pd.DataFrame) -> plt.Figure:
    """Paper Fig. 2 / Fig. 3: top-1 and normalised confidence for each configuration."""
    theme()
    if accuracy.empty:
        return _empty("no accuracy results")
    d = accuracy.assign(configuration=accuracy["width_pct"].astype(str) + " %")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    sns.barplot(d, x="configuration", y="top1", hue="model", ax=axes[0])
    axes[0].set(ylabel="top-1 accuracy", ylim=(0, 1), title="Top-1 on the test images")
    sns.lineplot(d, x="groups", y="confidence_norm", hue="model", marker="o", ax=axes[1])
    axes[1].set(xlabel="active groups", ylabel="confidence / full model", title="Confidence of the correct class")
    axes[1].set_xticks(sorted(d["groups"].unique()))
    fig.tight_layout()
    return fig


def latency_per_config(samples: pd.DataFrame) -> plt.Figure:
    """Paper Fig. 4: single-image inference time per configuration, per mapping and board."""
    theme()
    if samples.empty:
        return _empty("no latency measurements")
    d = samples.assign(configuration=(100 * samples["groups"] / samples["groups"].max()).round().astype(int).astype(str) + " %")
    boards = sorted(d["board"].unique())
    fig, axes = plt.subplots(1, len(boards), figsize=(5.5 * len(boards), 3.8), squeeze=False)
    for ax, board in zip(axes[0], boards):
        sns.boxplot(d[d.board == board], x="configuration", y="latency_ms", hue="mapping", ax=ax, showfliers=False)
        ax.set(ylabel="latency per image (ms)", title=f"{board}", yscale="log")
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, svg: str, png: str) -> None:
    fig.savefig(svg)
    fig.savefig(png, dpi=150)
    plt.close(fig)
