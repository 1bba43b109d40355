"""Latency statistics from interleaved rounds (dyndnn.results.latency) and compare's verdicts by
interval: what makes a latency number reproducible, and honest about how well it is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dyndnn.results import latency
from dyndnn.results.compare import DIFFERS, INCONCLUSIVE, REPRODUCED, _by_interval


def samples(points: dict, rounds: int = 12, per_round: int = 9, slow: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """Synthetic samples: points {(model, groups): ms}, each round's samples around it (1 %
    noise); `slow` {round: factor} slows every point of that round (a slow host episode)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(rounds):
        factor = (slow or {}).get(r, 1.0)
        for (model, groups), ms in points.items():
            for v in ms * factor * (1 + 0.01 * rng.standard_normal(per_round)):
                rows.append(
                    {"board": "b", "model": model, "groups": groups, "mapping": "m", "frequency": "fixed", "latency_ms": v, "round": r}
                )
    return pd.DataFrame(rows)


def test_the_median_is_the_median_of_round_medians_with_a_reproducible_interval():
    s = samples({("dynamic", 1): 1.0, ("dynamic", 4): 4.0})
    out = latency.summary(s).set_index("groups")
    per_round = s.groupby(["groups", "round"]).latency_ms.median().groupby("groups").median()
    assert out.p50_ms.to_dict() == pytest.approx(per_round.to_dict())
    assert (out.p50_lo_ms <= out.p50_ms).all() and (out.p50_ms <= out.p50_hi_ms).all()
    assert ((out.p50_hi_ms - out.p50_lo_ms) / 2 / out.p50_ms < 0.01).all()  # 1 % noise, 12 rounds: a narrow interval
    assert (out.rounds == 12).all() and latency.summary(s).equals(latency.summary(s))  # seeded bootstrap


def test_slow_rounds_widen_a_median_interval_but_cancel_in_a_paired_ratio():
    few = latency.summary(samples({("static", 4): 10.0}, slow={3: 1.6, 7: 1.4})).iloc[0]
    assert few.p50_ms == pytest.approx(10.0, rel=0.01)  # two slow rounds of twelve: the median of rounds ignores them
    slow = {1: 1.3, 3: 1.6, 5: 1.2, 7: 1.4, 9: 1.5}
    s = samples({("static", 1): 1.0, ("static", 4): 10.0}, slow=slow)
    out = latency.summary(s).set_index("groups")
    assert out.loc[4, "p50_hi_ms"] / out.loc[4, "p50_lo_ms"] > 1.1  # five of twelve: each median's interval widens ...
    r = latency.ratio_table(s).iloc[0]
    assert r.ratio == pytest.approx(0.1, rel=0.01)
    assert r.ratio_hi / r.ratio_lo < out.loc[4, "p50_hi_ms"] / out.loc[4, "p50_lo_ms"]  # ... and cancel in the ratio of one round


def test_samples_without_rounds_get_the_pooled_median_and_no_interval():
    s = samples({("dynamic", 1): 1.0}).drop(columns="round")
    out = latency.summary(s).iloc[0]
    assert out.rounds == 1 and out.p50_ms == pytest.approx(s.latency_ms.median()) and math.isnan(out.p50_lo_ms)
    assert math.isnan(latency.ratio_table(samples({("d", 1): 1.0, ("d", 2): 2.0}).drop(columns="round")).iloc[0].ratio_lo)


def test_the_negative_control_groups_techniques_that_run_the_same_graph():
    summary = pd.DataFrame(
        [
            {"board": "b", "mapping": "m", "frequency": "fixed", "model": m, "groups": 1, "p50_ms": ms}
            for m, ms in (("static", 1.0), ("truncated", 1.08), ("slimmable", 1.02), ("dynamic", 0.5))
        ]
    )
    exports = pd.DataFrame(
        [{"model": m, "groups": 1, "layout": "dense", "macs_executed": 100} for m in ("static", "truncated", "slimmable")]
        + [{"model": "dynamic", "groups": 1, "layout": "grouped", "macs_executed": 60}]
    )
    c = latency.control_table(summary, exports)
    assert len(c) == 1 and c.iloc[0].techniques == "slimmable / static / truncated"
    assert c.iloc[0].spread == pytest.approx(0.08)


def test_an_interval_of_a_ratio_of_two_independent_medians():
    lo, hi = latency.interval_of_ratio(1.0, 0.97, 1.03, 2.0, 1.94, 2.06)
    assert lo < 2.0 < hi and hi / lo == pytest.approx(math.exp(2 * math.hypot(*(math.log(1.03 / 0.97) / 2,) * 2)))
    assert all(math.isnan(v) for v in latency.interval_of_ratio(1.0, float("nan"), float("nan"), 2.0, 1.9, 2.1))


@pytest.mark.parametrize(
    "ratio, lo, hi, expected",
    [
        (1.02, 0.98, 1.06, REPRODUCED),  # the whole interval inside +-10 %
        (1.30, 1.20, 1.40, DIFFERS),  # wholly outside
        (1.08, 1.02, 1.15, INCONCLUSIVE),  # straddles the bound
        (1.05, float("nan"), float("nan"), REPRODUCED),  # an old record: the ratio alone
        (1.25, float("nan"), float("nan"), DIFFERS),
    ],
)
def test_compare_decides_a_latency_by_its_interval(ratio, lo, hi, expected):
    assert _by_interval(ratio, lo, hi, 0.10)[0] == expected


def test_compare_takes_the_ratio_interval_of_the_compared_frequency():
    """A board with DVFS has one g1/gG row per level: compare reads the row of the level it
    compares (the top one), not whichever comes first, nor none."""
    from dyndnn.results.compare import _ratio
    from dyndnn.results.runs import Run

    rows = [
        {
            "board": "b",
            "model": "dynamic",
            "mapping": "big",
            "frequency": f,
            "g_small": 1,
            "g_large": 4,
            "ratio": r,
            "ratio_lo": r - 0.01,
            "ratio_hi": r + 0.01,
        }
        for f, r in (("1400000", 0.30), ("2000000", 0.25))
    ]
    run = Run("r", {"latency_ratios": pd.DataFrame(rows)}, {}, {})
    medians = pd.Series({1: 1.0, 4: 4.0})
    assert _ratio(run, "b", "big", "dynamic", "2000000", 1, 4, medians) == pytest.approx((0.25, 0.24, 0.26))
    ratio, lo, hi = _ratio(run, "b", "big", "dynamic", "fixed", 1, 4, medians)  # no row of that level: the medians, no interval
    assert ratio == 0.25 and math.isnan(lo) and math.isnan(hi)
