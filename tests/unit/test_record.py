"""Records: replay of the shipped reference record, and `dyndnn compare` on it."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
from helpers import REPO

from dyndnn import analysis
from dyndnn.cli import main
from dyndnn.record import RecordError, verify

RECORD = REPO / "reference/quick"


def as_results(record, dest):
    """A record's files laid out as a user's results folder (no manifest: editable)."""
    shutil.copytree(record, dest, ignore=shutil.ignore_patterns("manifest.json"))
    return dest


def run_compare(capsys, *argv):
    code = main(["compare", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_shipped_record_verifies_and_holds_what_a_reviewer_needs():
    manifest = verify(RECORD)
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["git_commit"]) and manifest["wall_s"] > 0
    assert {"config", "started", "finished", "host", "precision", "files"} <= set(manifest)
    for needed in (
        "tables/accuracy.csv",
        "tables/accuracy.meta.json",
        "tables/layouts.csv",
        "profile/local/board.json",
        "report/index.html",
        "claims.yaml",
    ):
        assert needed in manifest["files"]
    assert any(f.startswith("eval/seed0/") for f in manifest["files"]) and any(f.startswith("benchmarks/") for f in manifest["files"])
    assert not any(f.endswith((".pt", ".onnx")) for f in manifest["files"]), "a record ships no weights"


def test_replay_rebuilds_the_shipped_report(tmp_path):
    from dyndnn.replay import replay

    html = replay(RECORD, tmp_path / "replay", REPO)
    shipped = (RECORD / "report/index.html").read_text()
    replayed = html.read_text()
    assert replayed == shipped, "the replayed report differs from the shipped one"
    assert len(list((tmp_path / "replay/figures").glob("*.png"))) == 7
    with pytest.raises(RecordError, match="inside the record"):
        replay(RECORD, RECORD / "out", REPO)


def test_a_changed_file_is_named(tmp_path):
    copy = tmp_path / "rec"
    shutil.copytree(RECORD, copy)
    (copy / "tables/accuracy.csv").write_text((copy / "tables/accuracy.csv").read_text() + "\n")
    with pytest.raises(RecordError, match=r"tables/accuracy.csv: sha256 .* does not match the manifest"):
        verify(copy)


def test_compare_the_record_with_itself_reproduces_everything(capsys):
    code, out, _ = run_compare(capsys, RECORD, RECORD, "--all")
    assert code == 0
    assert " differ" in out and re.search(r"\d+ reproduced, 0 differ", out)
    for kind in ("top1", "confidence_norm", "latency_ratio", "latency_ms", "resident_bytes", "claim"):
        assert kind in out


def test_compare_flags_a_moved_top1(capsys, tmp_path):
    run = as_results(RECORD, tmp_path / "results")
    acc = pd.read_csv(run / "tables/accuracy.csv")
    acc.loc[(acc.model == "dynamic") & (acc.groups == 2), "top1"] -= 0.05  # 5 points, tolerance 1
    acc.to_csv(run / "tables/accuracy.csv", index=False)
    code, out, _ = run_compare(capsys, RECORD, run)
    assert code == 1
    row = next(line for line in out.splitlines() if line.lstrip().startswith("top1") and "dynamic g2" in line)
    assert "differs" in row and "-5.0" in row


def test_compare_names_a_missing_table(capsys, tmp_path):
    run = as_results(RECORD, tmp_path / "results")
    (run / "tables/latency_summary.csv").unlink()
    code, _, err = run_compare(capsys, RECORD, run)
    assert code == 2 and "latency_summary.csv: missing table" in err and err.count("\n") == 1


def test_compare_across_two_boards_leaves_latency_not_comparable(capsys, tmp_path):
    run = as_results(RECORD, tmp_path / "results")
    for name in ("latency_summary", "boards"):
        t = pd.read_csv(run / f"tables/{name}.csv")
        t["board"] = "odroid-xu3"
        t.to_csv(run / f"tables/{name}.csv", index=False)
    code, out, _ = run_compare(capsys, RECORD, run)
    assert code in (0, 1)
    latency = [line for line in out.splitlines() if line.lstrip().startswith("latency")]
    assert latency and all("not comparable" in line for line in latency)
    assert any("board local was measured only in the reference" in line for line in latency)


def test_report_sets_the_reference_record_beside_the_run(tmp_path):
    """report.reference: the claims table gains the reference's verdict and reproduced / differs;
    a moved top-1 shows up among the rows that did not reproduce."""
    from dyndnn.report import TABLE_SECTIONS, report_from_files

    run = as_results(RECORD, tmp_path / "results")
    acc = pd.read_csv(run / "tables/accuracy.csv")
    acc.loc[(acc.model == "dynamic") & (acc.groups == 1), "top1"] += 0.1
    acc.to_csv(run / "tables/accuracy.csv", index=False)
    tables = run / "tables"
    derived = analysis.derived_tables(acc, pd.read_csv(tables / "latency_summary.csv"), 0.2)  # what the aggregate rule would write
    for name, df in derived.items():
        df.to_csv(tables / f"{name}.csv", index=False)
    inputs = {"accuracy": tables / "accuracy.csv", "summary": tables / "latency_summary.csv", "samples": tables / "latency_samples.csv",
              "boards": tables / "boards.csv", "points": tables / "operating_points.csv", "ranges": tables / "ranges.csv",
              "footprint": tables / "footprint.csv", "dataset": run / "data/dataset.json", "claims": REPO / "config/claims.yaml",
              "template": REPO / "report/templates/report.html.j2", "figures": [], "budget_summary": tables / "budget_summary.csv",
              **{n: tables / f"{n}.csv" for n in TABLE_SECTIONS if (tables / f"{n}.csv").is_file()}}  # fmt: skip
    out = tmp_path / "index.html"
    report_from_files({k: str(v) if not isinstance(v, list) else v for k, v in inputs.items()}, str(out), "T", 0.2, reference=str(RECORD))
    html = out.read_text()
    assert "<th>reference</th>" in html and "vs reference" in html and "Against the reference record" in html
    assert re.search(r"<td class=\"text\">top1</td><td class=\"text\">dynamic g1</td>.*?<td class=\"text\">differs</td>", html, re.S)


def _record_from(tmp_path, grow_samples_to: int = 0):
    """A record made by the pipeline's `make_record` from the shipped record's files laid out as
    a results folder; with `grow_samples_to`, its raw latency samples repeated past that size."""
    import json

    from dyndnn.record import make_record

    results = as_results(RECORD, tmp_path / "results")
    samples = results / "tables/latency_samples.csv"
    if grow_samples_to:
        text = samples.read_text()
        header, body = text.split("\n", 1)
        samples.write_text(header + "\n" + body * (grow_samples_to // len(body) + 1))
    manifest = json.loads((RECORD / "manifest.json").read_text())
    out = tmp_path / "record"
    make_record(
        results, out, manifest["config"], manifest["configfiles"], {"commit": "0" * 40, "dirty": False}, ["fp32"], RECORD / "claims.yaml"
    )
    return out


def test_a_record_with_samples_over_the_gzip_threshold_replays_and_compares_with_itself(capsys, tmp_path):
    from dyndnn.record import GZIP_OVER
    from dyndnn.replay import replay

    record = _record_from(tmp_path, grow_samples_to=GZIP_OVER + 1)
    manifest = verify(record)
    assert "tables/latency_samples.csv.gz" in manifest["files"] and "tables/latency_samples.csv" not in manifest["files"]
    assert replay(record, tmp_path / "replay", REPO).is_file()
    code, out, _ = run_compare(capsys, record, record)
    assert code == 0 and re.search(r"\d+ reproduced, 0 differ", out)


def _edit_manifest(tmp_path, edit):
    import json

    copy = tmp_path / "rec"
    shutil.copytree(RECORD, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_manifest_paths_stay_inside_the_record(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not the record's\n")
    from dyndnn.provenance import sha256_file

    digest = sha256_file(outside)
    for entry in ("../secret.txt", str(outside), "tables/../../secret.txt"):
        copy = _edit_manifest(tmp_path, lambda m, e=entry: m["files"].update({e: digest}))
        with pytest.raises(RecordError, match="not a relative path inside the record"):
            verify(copy)
        shutil.rmtree(copy)
    copy = _edit_manifest(tmp_path, lambda m: m["files"].update({"tables/link.csv": digest}))
    (copy / "tables/link.csv").symlink_to(outside)
    with pytest.raises(RecordError, match="leads outside the record"):
        verify(copy)


def test_an_unlisted_table_is_never_read(capsys, tmp_path):
    copy = _edit_manifest(tmp_path, lambda m: m["files"].pop("tables/ranges.csv"))
    code, _, err = run_compare(capsys, copy, copy)
    assert code == 2 and "tables/ranges.csv: not listed in" in err and err.count("\n") == 1


def test_a_folder_without_a_manifest_is_compared_as_an_unverified_run(capsys, tmp_path):
    run = as_results(RECORD, tmp_path / "results")
    code, out, _ = run_compare(capsys, RECORD, run)
    assert code == 0
    assert "reference/quick (record, every file's sha256 verified)" in out and "(unverified run (no manifest.json))" in out


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda m: m.update(files=list(m["files"])), "'files' must map each relative path"),
        (lambda m: m.pop("config"), "no 'config' object"),
    ],
)
def test_a_malformed_manifest_is_one_line_and_exit_2(capsys, tmp_path, edit, says):
    copy = _edit_manifest(tmp_path, edit)
    code, _, err = run_compare(capsys, copy, copy)
    assert code == 2 and says in err and err.count("\n") == 1
    assert main(["replay", str(copy), str(tmp_path / "out")]) == 2


def test_a_tolerance_must_be_a_finite_number(capsys):
    for bad in ("nan", "inf", "-1"):
        with pytest.raises(SystemExit) as e:
            main(["compare", str(RECORD), str(RECORD), "--top1-pts", bad])
        assert e.value.code == 2
        assert "a tolerance must be a finite number >= 0" in capsys.readouterr().err
