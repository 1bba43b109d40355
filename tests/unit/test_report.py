"""Analysis and report rendering from small hand-built tables (no torch, no pipeline)."""

from __future__ import annotations

import math

import jinja2
import pandas as pd
import pytest
import yaml
from helpers import REPO

from dyndnn.results import analysis, existing_works, plots
from dyndnn.results import claims as claim_checks
from dyndnn.results.figures import FIGURES
from dyndnn.results.report import build_context, render
from dyndnn.results.sections import figure_tables

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
        "resident_bytes": [16] * 4,
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


def summary(latencies: dict[int, float], mapping="one-core", device="cpu", energy=None, board="b", frequency="fixed") -> pd.DataFrame:
    return pd.DataFrame(
        [{"board": board, "model": "dynamic", "groups": k, "mapping": mapping, "device": device, "frequency": frequency, "p50_ms": v,
          "power_w": None if energy is None else 2.0, "energy_mj": None if energy is None else energy * v} for k, v in latencies.items()]
    )  # fmt: skip


CLAIMS = yaml.safe_load((REPO / "config/claims.yaml").read_text())["claims"]


def claim_tables(acc: pd.DataFrame, summ: pd.DataFrame, top1_floor: float = 0.5) -> dict:
    """What the aggregate rule writes for a run: accuracy and the tables derived from it."""
    d = analysis.derived_tables(acc, summ, top1_floor)
    return {
        "accuracy": acc,
        "latency_summary": summ,
        "operating_points": d["operating_points"],
        "ranges": d["ranges"],
        "footprint": d["footprint"],
        "top1_floor": top1_floor,
    }


def tables(with_latency: bool, baselines: bool = False) -> dict:
    acc = ACC.copy()
    if baselines:
        acc = pd.concat([acc, ACC.assign(model="static", resident_bytes=40)], ignore_index=True)
    lat = samples({k: [float(k)] * 3 for k in range(1, 5)}) if with_latency else pd.DataFrame()
    summ = summary({k: float(k) for k in range(1, 5)}) if with_latency else pd.DataFrame()
    t = {**claim_tables(acc, summ), "latency_samples": lat}
    if with_latency:
        from dyndnn.results.simulate import TraceSpec, simulate, summarise_runs

        pts = t["operating_points"][t["operating_points"].model == "dynamic"]
        t["budget_trace"] = simulate(pts, lat, TraceSpec(steps=60, contention=((10, 30, 2.0),), budget_changes=(), window=5))
        t["budget_summary"] = summarise_runs(t["budget_trace"])
    return t


def context(tmp_path, t):
    png = tmp_path / "f.png"
    plots.save(plots.fig2_top1(t), str(tmp_path / "f.svg"), str(png))
    figures = {name: {"png": png, "caption": "c", "command": "snakemake x"} for name in FIGURES}
    prov = {
        "git": {"commit": "abc", "dirty": False},
        "config": {
            "model": {"groups": 4, "connectivity": "nested", "head": "sum", "conv_channels": [8, 8, 8, 8, 8], "fc_features": [8]},
            "profile": {"min_runs": 1, "min_seconds": 0},
        },
    }
    dataset = {"source": "images", "splits": {"train": {"count": 10}, "test": {"count": 100, "sha256": "f" * 64}}}
    claims = claim_checks.evaluate_claims(CLAIMS, t)
    return build_context("T", t, claims, [], figures, prov, dataset, CLAIMS)


@pytest.mark.parametrize("with_latency,baselines", [(True, False), (False, False), (True, True), (False, True)])
def test_report_renders_with_missing_boards_and_baselines(repo, tmp_path, with_latency, baselines):
    html = render(repo / "report/templates/report.html.j2", context(tmp_path, tables(with_latency, baselines)))
    assert html.count("data:image/png;base64,") == len(FIGURES)
    for c in CLAIMS:  # every claim of claims.yaml appears, with a verdict
        assert c["claim"] in html
    assert ("No latency measurements" in html) != with_latency
    assert ("No existing-work baselines" in html) != baselines
    assert ("Claims against existing works, baseline by baseline" in html) == baselines  # memory needs no board
    techniques = next(s for s in context(tmp_path, tables(with_latency, baselines))["table_sections"] if s["name"] == "techniques")
    assert {r["model"] for r in techniques["table"]["rows"]} == ({"dynamic", "static"} if baselines else {"dynamic"})
    assert techniques["table"]["rows"][0]["model"] == "dynamic" and "resident_bytes" in techniques["table"]["columns"]


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_draws_from_empty_and_full_tables(name, tmp_path):
    for t in (tables(True, True), tables(False)):
        plots.save(plots.PLOTS[name](t), str(tmp_path / f"{name}.svg"), str(tmp_path / f"{name}.png"))
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_missing_variable_fails_the_build(repo, tmp_path):
    ctx = context(tmp_path, tables(False))
    del ctx["claims"]
    with pytest.raises(jinja2.UndefinedError):
        render(repo / "report/templates/report.html.j2", ctx)


# -- verdicts ---------------------------------------------------------------------
def claim(**kw):
    return {"id": "x", "claim": "c", "source": "s", "value": 2.0, "metric": "m", **kw}


def test_verdict_rules():
    assert claim_checks.verdict(claim(check="at_least", tolerance=0.2), 1.6) == claim_checks.HOLDS
    assert claim_checks.verdict(claim(check="at_least", tolerance=0.2), 1.59) == claim_checks.FAILS
    assert claim_checks.verdict(claim(check="increasing"), [0.5, 0.6, 0.7]) == claim_checks.HOLDS
    assert claim_checks.verdict(claim(check="increasing"), [0.5, 0.6, 0.6]) == claim_checks.FAILS
    assert claim_checks.verdict(claim(check="true"), True) == claim_checks.HOLDS
    with pytest.raises(ValueError, match="unknown check"):
        claim_checks.verdict(claim(check="vibes"), 1)


def by_id(df):
    return df.set_index("id")


def test_claims_without_boards_or_baselines_are_not_measurable():
    t = tables(False)
    c = by_id(claim_checks.evaluate_claims(CLAIMS, t))
    assert c.loc["accuracy_rises", "verdict"] == claim_checks.HOLDS
    for cid in ("energy_range_vs_existing", "time_range_vs_existing", "memory_vs_existing", "pruning_speeds_up_cpu", "mapping_dvfs_finer"):
        assert c.loc[cid, "verdict"] == claim_checks.NOT_MEASURABLE, cid
    assert "baseline" in c.loc["memory_vs_existing", "reason"]


def test_claims_from_measured_points():
    acc = ACC.copy()
    fast = summary({1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}, mapping="big", energy=3.0, frequency="2000000")
    slow = summary({1: 10.0, 2: 20.0, 3: 30.0, 4: 40.0}, mapping="little", energy=1.0, frequency="1400000")
    gpu = summary({1: 0.5, 2: 0.5, 3: 0.6, 4: 0.7}, mapping="gpu", device="gpu", frequency="921600000")
    c = by_id(claim_checks.evaluate_claims(CLAIMS, claim_tables(acc, pd.concat([fast, slow, gpu], ignore_index=True))))
    assert c.loc["pruning_speeds_up_cpu", "verdict"] == claim_checks.HOLDS
    assert c.loc["pruning_speeds_up_gpu", "verdict"] == claim_checks.FAILS  # 0.5 -> 0.5 ms is no speed-up
    # time: all points span 40 / 0.5 = 80x, the widest single mapping 4x: gain 20 -> below 41.6 * 0.8
    assert c.loc["time_range_with_mapping_dvfs", "ours"] == pytest.approx(20.0)
    assert c.loc["time_range_with_mapping_dvfs", "verdict"] == claim_checks.FAILS
    # energy (no GPU energy): 3..12 mJ (big) and 10..40 mJ (little): 40 / 3 over all, 4x alone
    assert c.loc["energy_range_with_mapping_dvfs", "ours"] == pytest.approx(40 / 3 / 4)


def test_claims_that_need_dvfs_are_not_measurable_at_a_fixed_frequency_and_say_what_mapping_alone_gave():
    """The local host has no DVFS levels: a claim about mapping *and* DVFS cannot be tested there."""
    fast = summary({1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}, mapping="all-cores")
    slow = summary({1: 2.0, 2: 4.0, 3: 6.0, 4: 8.0}, mapping="one-core")
    c = by_id(claim_checks.evaluate_claims(CLAIMS, claim_tables(ACC.copy(), pd.concat([fast, slow], ignore_index=True))))
    for cid in ("time_range_with_mapping_dvfs", "mapping_dvfs_finer"):
        assert c.loc[cid, "verdict"] == claim_checks.NOT_MEASURABLE, cid
        assert "needs DVFS levels" in c.loc[cid, "reason"] and "mapping alone" in c.loc[cid, "reason"]
    assert "mapping alone: 2x" in c.loc["time_range_with_mapping_dvfs", "reason"]  # 8 / 1 over all points, 4x on one mapping
    assert c.loc["pruning_speeds_up_cpu", "verdict"] == claim_checks.HOLDS  # a claim without DVFS stays testable


def test_memory_claim_against_a_baseline():
    acc = pd.concat([ACC.assign(resident_bytes=16), ACC.assign(model="static", resident_bytes=40)], ignore_index=True)
    c = by_id(claim_checks.evaluate_claims(CLAIMS, claim_tables(acc, pd.DataFrame())))
    assert c.loc["memory_vs_existing", "ours"] == pytest.approx(2.5)
    assert c.loc["memory_vs_existing", "verdict"] == claim_checks.HOLDS


def test_memory_claim_names_every_baseline_and_takes_only_those_at_the_same_compression():
    # truncated: as big as static but its small configurations fall under the floor -> not comparable
    weak = ACC.assign(model="truncated", resident_bytes=80, top1=ACC.top1.where(ACC.groups == ACC.groups.max(), 0.1))
    acc = pd.concat(
        [
            ACC.assign(resident_bytes=16),
            ACC.assign(model="static", resident_bytes=40),
            ACC.assign(model="slimmable", resident_bytes=20),
            weak,
        ],
        ignore_index=True,
    )
    fp = analysis.footprint_table(acc, 0.5).set_index("model")
    assert fp.loc["static", "resident_vs_dynamic"] == pytest.approx(2.5)
    assert fp.loc["dynamic", "resident_vs_dynamic"] == 1.0
    assert fp.loc["truncated", "recoverable_compression"] == 1.0
    c = by_id(claim_checks.evaluate_claims(CLAIMS, claim_tables(acc, pd.DataFrame())))
    assert c.loc["memory_vs_existing", "ours"] == pytest.approx(2.5)
    reason = c.loc["memory_vs_existing", "reason"]
    assert "static 2.50x" in reason and "slimmable 1.25x" in reason and "below that compression" in reason and "truncated" in reason


def test_range_claims_follow_their_rule_and_the_table_shows_every_baseline_both_ways():
    """The claims against existing works read the rule of config/claims.yaml: every baseline,
    only configurations at the accuracy floor, the largest ratio ("up to"). A baseline whose small
    configurations are at chance keeps a narrow range at the floor; the table gives each baseline
    with and without the floor, and a rule naming a subset or dropping the floor changes the value."""
    weak = ACC.top1.where(ACC.groups >= 3, 0.1)  # truncated: 25 % and 50 % at chance
    acc = pd.concat([ACC, ACC.assign(model="static"), ACC.assign(model="truncated", top1=weak)], ignore_index=True)
    lat = {"dynamic": [1.0, 2.0, 3.0, 4.0], "static": [1.0, 4.0, 9.0, 16.0], "truncated": [1.0, 4.0, 9.0, 16.0]}
    summ = pd.concat([summary(dict(zip(range(1, 5), v))).assign(model=m) for m, v in lat.items()], ignore_index=True)
    t = claim_tables(acc, summ)
    c = by_id(claim_checks.evaluate_claims(CLAIMS, t))
    assert c.loc["time_range_vs_existing", "ours"] == pytest.approx(4 / (16 / 9))  # vs truncated at the floor: 9..16 ms
    assert (
        "truncated" in c.loc["time_range_vs_existing", "reason"] and "without the floor: 0.25x" in c.loc["time_range_vs_existing", "reason"]
    )
    per = existing_works.claim_baselines(CLAIMS, t)
    rows = per[per.claim == "time_range_vs_existing"].set_index("baseline")
    assert rows.loc["static", "ratio_all"] == pytest.approx(0.25) and rows.loc["static", "ratio_floor"] == pytest.approx(0.25)
    assert rows.loc["truncated", "ratio_all"] == pytest.approx(0.25) and rows.loc["truncated", "ratio_floor"] == pytest.approx(2.25)
    assert rows.loc["truncated", "usable"] == "2 of 4" and set(rows.counted) == {"at the floor"}
    mem = per[per.claim == "memory_vs_existing"].set_index("baseline")
    assert mem.loc["static", "theirs_all"] == pytest.approx(10.0) and math.isnan(mem.loc["truncated", "ratio_floor"])
    ruled = [{**x, "baselines": ["static"], "accuracy_floor": False} if x["id"] == "time_range_vs_existing" else x for x in CLAIMS]
    c = by_id(claim_checks.evaluate_claims(ruled, t))
    assert (
        c.loc["time_range_vs_existing", "ours"] == pytest.approx(0.25)
        and "every configuration" in c.loc["time_range_vs_existing", "reason"]
    )
    per = existing_works.claim_baselines(ruled, t)
    assert per[(per.claim == "time_range_vs_existing") & (per.baseline == "truncated")].counted.item() == "not counted"
    c = by_id(claim_checks.evaluate_claims(CLAIMS, {**t, "top1_floor": 0.75}))  # nothing of ours reaches the floor
    assert c.loc["time_range_vs_existing", "verdict"] == claim_checks.NOT_MEASURABLE
    assert "no configuration of the dynamic DNN reaches top-1 >= 0.75" in c.loc["time_range_vs_existing", "reason"]


def test_a_claim_against_existing_works_says_when_the_floor_decision_rests_on_the_seed_spread():
    """The truncated model's 75 % configuration passes the floor in the primary seed only (one of
    three): the time range then counts it and its value changes, so the verdict reads "..., within noise"
    and names the configuration and the value with the seed means deciding the floor. Where the
    value does not change (memory) or every seed agrees, nothing is flagged."""
    weak = ACC.top1.where(ACC.groups >= 3, 0.1)  # truncated: 25 % and 50 % at chance, 75 % at 0.65 in the primary seed
    acc = pd.concat([ACC, ACC.assign(model="static"), ACC.assign(model="truncated", top1=weak)], ignore_index=True)
    lat = {"dynamic": [1.0, 2.0, 3.0, 4.0], "static": [1.0, 4.0, 9.0, 16.0], "truncated": [1.0, 4.0, 9.0, 16.0]}
    summ = pd.concat([summary(dict(zip(range(1, 5), v))).assign(model=m) for m, v in lat.items()], ignore_index=True)
    t = claim_tables(acc, summ)
    seeds = acc[["model", "groups"]].assign(
        n_seeds=3,
        top1_mean=acc.top1,
        top1_std=0.01,
        top1_min=acc.top1,
        top1_max=acc.top1 + 0.02,
        confidence_mean=acc.confidence_norm,
        confidence_std=0.0,
    )
    c = by_id(claim_checks.evaluate_claims(CLAIMS, {**t, "seed_summary": seeds}))
    assert c.loc["time_range_vs_existing", "noise"] == ""  # every seed on the same side of the floor
    g3 = (seeds.model == "truncated") & (seeds.groups == 3)
    seeds.loc[g3, ["top1_mean", "top1_min", "top1_max"]] = [0.40, 0.30, 0.65]
    c = by_id(claim_checks.evaluate_claims(CLAIMS, {**t, "seed_summary": seeds}))
    row = c.loc["time_range_vs_existing"]
    assert row.ours == pytest.approx(4 / (16 / 9)) and row.verdict == claim_checks.HOLDS  # the primary seed decides the value
    assert row.noise == "at top-1 >= 0.5 in some seeds only: truncated at 3 group(s) (30.0-65.0 %); with the seed means at the floor: 4x"
    assert claim_checks.shown_verdict(row.verdict, row.noise) == "holds, within noise"
    assert c.loc["memory_vs_existing", "noise"] == ""  # its value is the same either way
    assert c.loc["time_range_vs_existing", "ours"] == by_id(claim_checks.evaluate_claims(CLAIMS, t)).loc["time_range_vs_existing", "ours"]


@pytest.mark.parametrize(
    "edit, says",
    [
        ({"baselines": "some"}, "baselines: 'all' or a list"),
        ({"accuracy_floor": "yes"}, "accuracy_floor: true or false"),
        (
            {"id": "accuracy_rises", "metric": "top1_by_groups", "check": "increasing", "accuracy_floor": False},
            "only a claim against existing works",
        ),
    ],
)
def test_a_bad_claim_rule_is_named(edit, says):
    claims = [dict(next(x for x in CLAIMS if x["id"] == "time_range_vs_existing"), **edit)]
    with pytest.raises(ValueError, match=says):
        claim_checks.check_claims(claims)


def test_a_rising_claim_on_seed_means_says_when_its_steps_are_within_the_seed_spread():
    """With several seeds the rising claims test the seed means, and a verdict whose steps are
    smaller than the pooled seed std reads "..., within noise"; with one seed the reason says the
    spread is unknown. Latency steps whose 95 % intervals overlap qualify the speed-up claim."""
    t = claim_tables(ACC.copy(), summary({1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}))
    c = by_id(claim_checks.evaluate_claims(CLAIMS, t))
    assert c.loc["accuracy_rises", "noise"] == "" and "one seed: spread unknown" in c.loc["accuracy_rises", "reason"]
    seeds = pd.DataFrame(
        {"model": "dynamic", "groups": [1, 2, 3, 4], "n_seeds": 3, "top1_mean": [0.60, 0.70, 0.701, 0.702], "top1_std": 0.01}
    ).assign(confidence_mean=[0.9, 0.95, 0.99, 1.0], confidence_std=[0.001, 0.001, 0.001, 0.0])
    c = by_id(claim_checks.evaluate_claims(CLAIMS, {**t, "seed_summary": seeds}))
    row = c.loc["accuracy_rises"]
    assert row.ours == pytest.approx([0.60, 0.70, 0.701, 0.702])  # the seed means, not the primary seed's 0.5 / 0.6 / ...
    assert row.verdict == claim_checks.HOLDS and row.noise == "2 of 3 steps smaller than the seed std"
    assert claim_checks.shown_verdict(row.verdict, row.noise) == "holds, within noise"
    assert c.loc["confidence_rises", "noise"] == ""  # steps of 0.01-0.05 against a spread of 0.001
    wide = t["latency_summary"].assign(p50_lo_ms=lambda d: d.p50_ms * 0.5, p50_hi_ms=lambda d: d.p50_ms * 1.6)
    c = by_id(claim_checks.evaluate_claims(CLAIMS, {**t, "latency_summary": wide}))
    assert c.loc["pruning_speeds_up_cpu", "verdict"] == claim_checks.HOLDS
    assert c.loc["pruning_speeds_up_cpu", "noise"] == "3 step(s) with overlapping 95 % latency intervals"


def test_pareto_mask():
    df = pd.DataFrame({"cost": [1.0, 2.0, 2.0, 3.0, float("nan")], "top1": [0.5, 0.7, 0.6, 0.7, 0.9]})
    assert list(analysis.pareto_mask(df, "cost")) == [True, True, False, False, False]


def test_seed_summary_and_ablation_table_from_hand_built_results(repo, tmp_path):
    seeds = pd.concat([ACC.assign(seed=0), ACC.assign(seed=1, top1=ACC.top1 + 0.02)], ignore_index=True)
    s = analysis.seed_summary(seeds).set_index("groups")
    assert s.loc[2, "n_seeds"] == 2 and s.loc[2, "top1_mean"] == pytest.approx(0.61)
    assert s.loc[2, "top1_std"] == pytest.approx(0.02 / math.sqrt(2)) and s.loc[2, "top1_max"] == pytest.approx(0.62)

    variant = ACC.assign(model="dynamic-pc", top1=[0.5, 0.52, 0.56, 0.6], resident_bytes=20)
    knobs = {"description": "d", "head": "sum", "dropout": 0.5, "frozen_dropout": 0.0, "stage_epochs": "[1]", "stage_lr": "[0.1]"}
    history = pd.DataFrame({"epoch_s": [1.0, 2.0, 3.5]})
    ab = analysis.ablation_table(
        pd.concat([ACC, variant]), {"dynamic": history}, {"dynamic": knobs, "dynamic-pc": {**knobs, "head": "per_config"}}
    )
    ab = ab.set_index("design")
    assert ab.loc["dynamic", "min_gain_pts"] == pytest.approx(5.0) and ab.loc["dynamic-pc", "min_gain_pts"] == pytest.approx(2.0)
    assert ab.loc["dynamic", "train_s"] == 6.5 and math.isnan(ab.loc["dynamic-pc", "train_s"])
    assert ab.loc["dynamic-pc", "top1_g4"] == 0.6 and ab.loc["dynamic-pc", "resident_bytes"] == 20
    assert math.isnan(ab.loc["dynamic", "vs_static_pts"])  # no static baseline evaluated
    static = ACC.assign(model="static", top1=[0.6, 0.7, 0.72, 0.74])
    with_static = analysis.ablation_table(pd.concat([ACC, variant, static]), {}, {"dynamic": knobs}).set_index("design")
    assert with_static.loc["dynamic", "vs_static_pts"] == pytest.approx(-4.0)

    t = tables(False)
    t["seed_summary"], t["ablation"] = analysis.seed_summary(seeds), ab.reset_index()
    html = render(repo / "report/templates/report.html.j2", context(tmp_path, t))
    assert "Spread over training seeds" in html and "Ablation: what makes later groups count" in html and "dynamic-pc" in html
    html = render(repo / "report/templates/report.html.j2", context(tmp_path, tables(False)))
    assert "No ablation designs in this run" in html


def test_busy_boards_are_warned_about():
    from dyndnn.results.report import load_warnings

    boards = [
        {"board": "local", "facts": {"host_others_cpu_share": "0.62", "host_load_avg": "[3.1, 2.0, 1.2]"}},
        {"board": "quiet", "facts": {"host_others_cpu_share": "0.01"}},
        {"board": "old", "facts": {}},  # recorded before load was measured
    ]
    (warning,) = load_warnings(boards, 0.25)
    assert "Board local was busy" in warning and "62%" in warning and "max_others_share 25%" in warning


def test_unsteady_medians_are_warned_about():
    from dyndnn.results.report import load_warnings

    steady = [1.0] * 30
    drifting = [1.0] * 10 + [1.5] * 10 + [1.0] * 10  # the middle third ran 50 % slower
    samples = pd.DataFrame(
        [{"board": "local", "model": "dynamic", "groups": k, "mapping": "one-core", "frequency": "fixed", "run_idx": i, "latency_ms": v}
         for k, runs in ((1, steady), (2, drifting)) for i, v in enumerate(runs)]
    )  # fmt: skip
    (warning,) = load_warnings([], 0.25, samples, 0.1)
    assert "Board local: the median latency of 1 of 2 points moved by more than 10%" in warning and "worst 50%: dynamic g2" in warning
    assert load_warnings([], 0.25, samples, 0.6) == []


def test_figures_overlay_a_reference_record():
    """report.reference: Fig. 2 marks the reference's top-1 on each bar of the same technique and
    configuration, Fig. 3 adds its curves dashed, and both tables carry the reference values."""
    t = tables(True, baselines=True)
    t["reference_accuracy"] = t["accuracy"].assign(top1=t["accuracy"].top1 - 0.05)
    fig = plots.fig2_top1(t)
    marks = [c for c in fig.axes[0].collections if c.get_label() == "reference record"]
    assert len(marks) == 1
    assert sorted(marks[0].get_offsets()[:, 1]) == pytest.approx(sorted(100 * t["reference_accuracy"].top1))  # in percent
    heights = sorted(b.get_height() for bars in fig.axes[0].containers for b in bars)
    assert heights == pytest.approx(sorted(100 * t["accuracy"].top1))
    low, high = fig.axes[0].get_ylim()
    assert 0 < low < 100 * t["accuracy"].top1.min() and high <= 100  # zoomed to the bars, a step of tenths of a point shows
    legend = fig.axes[0].get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 >= fig.axes[0].get_window_extent().x1 - 1  # right of the axes
    fig3 = plots.fig3_confidence(t)
    assert sum(line.get_linestyle() == "--" for line in fig3.axes[0].lines) >= t["accuracy"].model.nunique()
    shown = figure_tables(t)["fig2_top1"]
    assert (shown.top1 - shown.reference_top1).round(6).eq(0.05).all()
    assert "reference_top1" not in figure_tables(tables(True))["fig2_top1"]


def test_figures_show_the_seed_mean_and_spread_where_the_run_has_several_seeds():
    from matplotlib.container import ErrorbarContainer

    t = tables(False)
    t["seed_summary"] = pd.DataFrame(
        {"model": "dynamic", "groups": [1, 2, 3, 4], "n_seeds": 3, "top1_mean": [0.6, 0.61, 0.62, 0.63]}
    ).assign(top1_std=0.002, confidence_mean=[0.9, 0.95, 0.99, 1.0], confidence_std=[0.01, 0.01, 0.01, 0.0])
    fig = plots.fig2_top1(t)
    bars = [b.get_height() for c in fig.axes[0].containers if not isinstance(c, ErrorbarContainer) for b in c]
    assert bars == pytest.approx([60, 61, 62, 63])  # the means, not the primary seed's 50 / 60 / 65 / 70
    assert sum(isinstance(c, ErrorbarContainer) for c in fig.axes[0].containers) == 4
    assert "mean +- std over seeds" in fig.axes[0].get_title()
    fig3 = plots.fig3_confidence(t)
    assert sum(isinstance(c, ErrorbarContainer) for c in fig3.axes[0].containers) == 1


def test_job_times_come_from_every_jobs_benchmark_file(tmp_path):
    from dyndnn.results.aggregate import job_times_table

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = []
    for rel, line in [
        (
            "benchmarks/train_increment/dynamic/seed0/stage1.tsv",
            "14.21\t0:00:14\t870.88\t3804.79\t845.14\t857.41\t12.89\t37.94\t132.96\t19.49\n",
        ),
        ("benchmarks/prepare_data.tsv", "3.50\t0:00:03\t300.00\t900.00\t290.00\t295.00\t1.00\t2.00\t98.00\t3.40\n"),
    ]:
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(header + line)
        files.append(f)
    t = job_times_table(files)
    assert t.to_dict("records") == [
        {
            "job": "train_increment",
            "target": "dynamic/seed0/stage1",
            "wall_s": 14.21,
            "cpu_s": 19.49,
            "max_rss_mb": 870.88,
            "mean_load": 132.96,
        },
        {"job": "prepare_data", "target": "", "wall_s": 3.5, "cpu_s": 3.4, "max_rss_mb": 300.0, "mean_load": 98.0},
    ]
