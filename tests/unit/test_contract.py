"""A record's tables have a contract, checked by every reader: a record whose tables were edited
*and* whose manifest was updated to match (what a buggy producer or a hostile sender hands you)
is refused with one line naming the file, the line and the column, exit 2, never compared or
replayed as if it were true."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pandas as pd
import pytest
from helpers import REPO

from dyndnn.cli import main

RECORD = REPO / "reference/quick"


def resealed(tmp_path, edit, table: str = "accuracy"):
    """A copy of the quick record with tables/<table>.csv edited by `edit` (a DataFrame -> DataFrame
    or a str for the whole file), its sha256 written into the manifest again."""
    rec = tmp_path / "rec"
    shutil.copytree(RECORD, rec)
    f = rec / f"tables/{table}.csv"
    if isinstance(edit, str):
        f.write_text(edit)
    else:
        edit(pd.read_csv(f)).to_csv(f, index=False)
    manifest = json.loads((rec / "manifest.json").read_text())
    manifest["files"][f"tables/{table}.csv"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (rec / "manifest.json").write_text(json.dumps(manifest))
    return rec


def g4_nan(df):
    df.loc[(df.model == "dynamic") & (df.groups == 4), "top1"] = float("nan")
    return df


CASES = {
    "top1 NaN": ("accuracy", g4_nan, r"accuracy.csv: line 5, column top1: empty \(a number is required\)"),
    "top1 170 %": ("accuracy", lambda d: d.assign(top1=1.7), r"accuracy.csv: line 2, column top1: 1.7 is outside \[0, 1\]"),
    "top1 x 100": ("accuracy", lambda d: d.assign(top1=100 * d.top1), r"column top1: .* is outside \[0, 1\]"),
    "rows twice": ("accuracy", lambda d: pd.concat([d, d.assign(top1=0.99)]), r"key \(model=dynamic, groups=1\) appears twice"),
    "negative p50": (
        "operating_points",
        lambda d: d.assign(p50_ms=-d.p50_ms),
        r"operating_points.csv: line 2, column p50_ms: .* is outside \(0, inf\]",
    ),
    "empty accuracy": ("accuracy", "model,groups,top1,confidence_norm,macs,resident_bytes\n", r"accuracy.csv: no rows"),
    "no top1 column": ("accuracy", lambda d: d.drop(columns="top1"), r"accuracy.csv: malformed table, no column top1"),
    "seed rows disagree": (
        "accuracy_seeds",
        lambda d: d.assign(top1=d.top1 + 0.1),
        r"seed_summary.csv: line 2: top1_mean .* disagrees with accuracy_seeds.csv",
    ),
    "text in a number": (
        "latency_summary",
        lambda d: d.assign(p50_ms="fast"),
        r"latency_summary.csv: line 2, column p50_ms: 'fast' is not a number",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("command", ["compare", "summary", "replay"])
def test_a_resealed_record_with_impossible_tables_is_refused_by_every_reader(case, command, tmp_path, capsys):
    table, edit, says = CASES[case]
    rec = resealed(tmp_path, edit, table)
    argv = {
        "compare": ["compare", str(RECORD), str(rec)],
        "summary": ["summary", str(rec)],
        "replay": ["replay", str(rec), str(tmp_path / "out")],
    }
    assert main(argv[command]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(says, err), err
    assert not (tmp_path / "out").exists(), "nothing is written for a refused record"


def test_an_unknown_record_version_is_refused(tmp_path, capsys):
    rec = tmp_path / "rec"
    shutil.copytree(RECORD, rec)
    manifest = json.loads((rec / "manifest.json").read_text())
    manifest["record_version"] = 12
    (rec / "manifest.json").write_text(json.dumps(manifest))
    assert main(["compare", str(RECORD), str(rec)]) == 2
    assert "record_version 12 is not one this dyndnn reads" in capsys.readouterr().err


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda d: d.assign(top1=5.0), "column top1: 5.0 is outside [0, 1]"),
        (lambda d: d.assign(p50_ms=-1.0), "column p50_ms: -1.0 is outside (0, inf]"),
    ],
)
def test_the_manager_refuses_impossible_operating_points(edit, says, tmp_path, capsys):
    points = tmp_path / "operating_points.csv"
    edit(pd.read_csv(RECORD / "tables/operating_points.csv")).to_csv(points, index=False)
    assert main(["manager", "--time-ms", "1", "--points", str(points)]) == 2
    assert says in capsys.readouterr().err


def test_replay_writes_only_into_a_new_or_empty_folder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.png").write_text("from another replay")
    assert main(["replay", str(RECORD), str(out)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["stale.png"]  # nothing written, nothing removed
