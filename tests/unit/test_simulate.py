"""Budget-trace simulation on hand-built operating points with known latencies."""

from __future__ import annotations

import pandas as pd

from dyndnn.results.simulate import TraceSpec, make_trace, simulate, summarise_runs

POINTS = pd.DataFrame(
    {
        "mapping": ["m"] * 4,
        "frequency": ["fixed"] * 4,
        "groups": [1, 2, 3, 4],
        "p50_ms": [1.0, 2.0, 3.0, 4.0],
        "top1": [0.6, 0.7, 0.75, 0.8],
    }
)
SAMPLES = pd.DataFrame([{"mapping": "m", "frequency": "fixed", "groups": k, "latency_ms": float(k)} for k in range(1, 5) for _ in range(5)])


def test_trace_shape():
    t = make_trace(TraceSpec(steps=10, contention=((2, 4, 3.0),), budget_changes=((5, 0.5),)), 4.0)
    assert list(t.slowdown) == [1, 1, 3, 3, 1, 1, 1, 1, 1, 1]
    assert list(t.budget_ms) == [4.0] * 5 + [2.0] * 5


def test_policies_under_contention():
    spec = TraceSpec(steps=200, budget_ms=4.0, contention=((50, 150, 2.0),), budget_changes=(), window=5)
    runs = simulate(POINTS, SAMPLES, spec)
    s = summarise_runs(runs).set_index("policy")
    assert s.loc["oracle", "violations"] == 0  # 4 ms budget at 2x slowdown: the oracle drops to 2 groups
    assert s.loc["fixed", "violations"] == 100 and s.loc["fixed", "mean_top1"] == 0.8
    assert s.loc["manager", "violations"] < s.loc["stepping", "violations"] < s.loc["fixed", "violations"]
    assert s.loc["oracle", "mean_top1"] >= s.loc["manager", "mean_top1"] - 1e-9
    during = runs[(runs.policy == "oracle") & (runs.slowdown == 2.0)]
    assert set(during.groups) == {2}
