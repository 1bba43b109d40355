"""The runtime manager on hand-built operating points."""

from __future__ import annotations

import pandas as pd
import pytest

from dyndnn.results.manager import choose

POINTS = pd.DataFrame(
    {
        "groups": [1, 2, 3, 4, 4, 2],
        "mapping": ["big", "big", "big", "big", "little", "little"],
        "p50_ms": [1.0, 2.0, 3.0, 4.0, 8.0, 2.0],
        "energy_mj": [5.0, 8.0, 11.0, 14.0, 6.0, 3.0],
        "power_w": [5.0, 4.0, 3.7, 3.5, 0.75, 1.5],
        "top1": [0.60, 0.70, 0.75, 0.80, 0.80, 0.70],
    }
)


def test_highest_accuracy_within_time_budget():
    c = choose(POINTS, 3.5, "time_ms")
    assert c.meets_budget and c.point["groups"] == 3


def test_ties_go_to_the_cheaper_point():
    c = choose(POINTS, 10.0, "time_ms")  # two points at 0.80: 4 ms on big beats 8 ms on little
    assert c.point["mapping"] == "big" and c.point["p50_ms"] == 4.0
    c = choose(POINTS, 2.0, "time_ms")  # two points at 0.70 and 2 ms: fewer groups first, then ...
    assert c.point["top1"] == 0.70 and c.point["p50_ms"] == 2.0


def test_energy_and_power_budgets():
    assert choose(POINTS, 6.0, "energy_mj").point["mapping"] == "little"
    assert choose(POINTS, 1.0, "power_w").point["groups"] == 4


def test_infeasible_budget_flags_the_cheapest():
    c = choose(POINTS, 0.5, "time_ms")
    assert not c.meets_budget and c.point["p50_ms"] == 1.0 and "no point meets" in c.reason


def test_bad_inputs():
    with pytest.raises(ValueError, match="budget kind"):
        choose(POINTS, 1.0, "latency")
    with pytest.raises(ValueError, match="no operating point"):
        choose(POINTS.assign(energy_mj=float("nan")), 1.0, "energy_mj")
    with pytest.raises(ValueError, match="operating-points column 'p50_ms' is not numeric"):
        choose(POINTS.assign(p50_ms="fast"), 1.0)
    with pytest.raises(ValueError, match="no column 'top1'"):
        choose(POINTS.drop(columns="top1"), 1.0)


def test_cli_answers_a_budget_query(tmp_path, capsys):
    from dyndnn.cli import main

    table = tmp_path / "points.csv"
    POINTS.assign(board="b", model="dynamic", frequency="fixed").to_csv(table, index=False)
    assert main(["manager", "--points", str(table), "--time-ms", "3.5"]) == 0
    assert "groups 3" in capsys.readouterr().out
    assert main(["manager", "--points", str(table), "--time-ms", "0.1"]) == 3
    assert "VIOLATES" in capsys.readouterr().out
    assert main(["manager", "--points", str(tmp_path / "missing.csv"), "--time-ms", "1"]) == 2


def test_cli_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    from dyndnn.cli import main

    table = tmp_path / "operating_points.csv"
    POINTS.assign(board="local", model="dynamic", energy_mj=float("nan")).to_csv(table, index=False)
    wrong = tmp_path / "accuracy.csv"
    POINTS[["groups", "top1"]].to_csv(wrong, index=False)
    cases = [
        (["--points", str(wrong), "--time-ms", "5"], "no column board, model, p50_ms"),
        (["--points", str(table), "--time-ms", "nan"], "--time-ms nan: a budget must be a finite number >= 0"),
        (["--points", str(table), "--energy-mj", "-1"], "--energy-mj -1: a budget must be"),
        (
            ["--points", str(table), "--time-ms", "5", "--board", "nosuch"],
            "--board 'nosuch': no operating point of that board in the table (known: local)",
        ),
        (["--points", str(table), "--time-ms", "5", "--model", "nosuch"], "--model 'nosuch'"),
        (["--points", str(tmp_path / "absent.csv"), "--time-ms", "5"], "no such file"),
    ]
    for argv, message in cases:
        assert main(["manager", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["manager", "--points", str(table), "--time-ms", "3.5"]) == 0
    assert "energy not measured" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("dyndnn ")
