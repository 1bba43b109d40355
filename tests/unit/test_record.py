"""Records: replay of the shipped reference record, and `dyndnn compare` on it."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
from helpers import REPO

from dyndnn.cli import main
from dyndnn.results import analysis
from dyndnn.results.record import RecordError, verify

RECORD = REPO / "reference/quick"
# Every shipped record (quick: three seeds of the quick config; main: the main job) verifies,
# replays to its own report and compares with itself.
SHIPPED = [pytest.param(m.parent, id=m.parent.name) for m in sorted((REPO / "reference").glob("*/manifest.json"))]


def as_results(record, dest):
    """A record's files laid out as a user's results folder (no manifest: editable; raw samples a
    record ships gzipped are unpacked, as the pipeline wrote them)."""
    import gzip

    shutil.copytree(record, dest, ignore=shutil.ignore_patterns("manifest.json"))
    for packed in dest.rglob("*.csv.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    return dest


def one_seed(run):
    """The run as its primary seed alone (seed summary of one seed), so editing accuracy.csv
    edits what compare reads."""
    acc = pd.read_csv(run / "tables/accuracy.csv").assign(seed=0)
    analysis.seed_summary(acc).to_csv(run / "tables/seed_summary.csv", index=False)
    acc.to_csv(run / "tables/accuracy_seeds.csv", index=False)
    return run


def run_compare(capsys, *argv):
    code = main(["compare", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("record", SHIPPED)
def test_the_shipped_record_verifies_and_holds_what_a_reviewer_needs(record):
    manifest = verify(record)
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
    assert manifest["sittings"] and all("cpu_isa" in s and "native_bf16" in s for s in manifest["sittings"])
    assert not any(f.endswith((".pt", ".onnx")) for f in manifest["files"]), "a record ships no weights"


RENDERER = (
    *(f"src/dyndnn/results/{m}.py" for m in ("report", "plots", "sections", "claims", "existing_works", "analysis")),
    "report/templates",
)


def _renderer_changed_since(commit: str) -> str:
    """The newest commit after `commit` that changed what draws a report ('' when none, or no git)."""
    import subprocess

    proc = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h", f"{commit}..HEAD", "--", *RENDERER], capture_output=True, text=True
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


@pytest.mark.parametrize("record", SHIPPED)
def test_replay_rebuilds_the_shipped_report(tmp_path, record):
    from dyndnn.results.replay import replay

    html = replay(record, tmp_path / "replay", REPO)
    assert len(list((tmp_path / "replay/figures").glob("*.png"))) == 7
    same = html.read_text() == (record / "report/index.html").read_text()
    stale = "" if same else _renderer_changed_since(json.loads((record / "manifest.json").read_text())["git_commit"])
    if stale:  # the record's tables still replay, but its report was drawn by older code that drew it otherwise
        pytest.skip(f"{record.name}'s report predates the report code of {stale} (re-made with the next run of that record)")
    assert same, "the replayed report differs from the shipped one"
    with pytest.raises(RecordError, match="inside the record"):
        replay(RECORD, RECORD / "out", REPO)


def test_a_changed_file_is_named(tmp_path):
    copy = tmp_path / "rec"
    shutil.copytree(RECORD, copy)
    (copy / "tables/accuracy.csv").write_text((copy / "tables/accuracy.csv").read_text() + "\n")
    with pytest.raises(RecordError, match=r"tables/accuracy.csv: sha256 .* does not match the manifest"):
        verify(copy)


@pytest.mark.parametrize("record", SHIPPED)
def test_compare_the_record_with_itself_reproduces_everything(capsys, record):
    code, out, _ = run_compare(capsys, record, record, "--all")
    assert code == 0
    assert " differ" in out and re.search(r"\d+ reproduced, 0 differ", out)
    for kind in ("top1", "confidence_norm", "latency_ratio", "latency_ms", "resident_bytes", "claim"):
        assert kind in out


def test_compare_flags_a_moved_top1(capsys, tmp_path):
    run = as_results(RECORD, tmp_path / "results")
    acc = pd.read_csv(run / "tables/accuracy.csv")
    ref_mean = pd.read_csv(RECORD / "tables/seed_summary.csv").set_index(["model", "groups"]).loc[("dynamic", 2), "top1_mean"]
    acc.loc[(acc.model == "dynamic") & (acc.groups == 2), "top1"] = ref_mean - 0.2  # 20 points below the reference's mean
    acc.to_csv(run / "tables/accuracy.csv", index=False)
    code, out, _ = run_compare(capsys, RECORD, one_seed(run))
    assert code == 1
    row = next(line for line in out.splitlines() if line.lstrip().startswith("top1") and "dynamic g2" in line)
    assert "differs" in row and "-20.0" in row


def test_compare_names_the_config_differences_and_prints_numbers_in_their_units(capsys):
    """Two records of different configs (a quick run against the main job, an easy mistake): the
    header lists what differs in what decides numbers (data subsets, design, recipe, seeds) before
    any row, and top-1 reads in percent and points, never in scientific notation."""
    code, out, _ = run_compare(capsys, REPO / "reference/main", RECORD)
    header = out.split("\nkind ", 1)[0]
    for difference in ("data.train_subset: all vs 5000", "train.epochs: 10 vs 1", "model.fc_features: [4096, 4096] vs [1024, 1024]"):
        assert difference in header, header
    assert "train.lr: 0.1 vs 0.05" in header and "data.path" not in header
    assert not re.search(r"\de[+-]\d\d", out), "scientific notation in the table"
    row = next(line for line in out.splitlines() if line.startswith("top1") and "dynamic g1" in line)
    assert re.search(r"\d+\.\d\d %", row) and re.search(r"[+-]\d+\.\d\d pts", row), row
    code, out, _ = run_compare(capsys, RECORD, RECORD)
    assert "agree in every value that decides numbers" in out


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
    from dyndnn.results.report import report_from_files
    from dyndnn.results.sections import TABLE_SECTIONS

    run = as_results(RECORD, tmp_path / "results")
    acc = pd.read_csv(run / "tables/accuracy.csv")
    acc.loc[(acc.model == "dynamic") & (acc.groups == 1), "top1"] += 0.3
    acc.to_csv(run / "tables/accuracy.csv", index=False)
    one_seed(run)
    tables = run / "tables"
    derived = analysis.derived_tables(acc, pd.read_csv(tables / "latency_summary.csv"), 0.2)  # what the aggregate rule would write
    for name, df in derived.items():
        df.to_csv(tables / f"{name}.csv", index=False)
    inputs = {"accuracy": tables / "accuracy.csv", "latency_summary": tables / "latency_summary.csv", "latency_samples": tables / "latency_samples.csv",
              "boards": tables / "boards.csv", "operating_points": tables / "operating_points.csv", "ranges": tables / "ranges.csv",
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

    from dyndnn.results.record import make_record

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
    from dyndnn.results.record import GZIP_OVER
    from dyndnn.results.replay import replay

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


X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 avx512_vnni
"""
BIG_LITTLE = """processor\t: 0
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4
CPU implementer\t: 0x41
CPU architecture: 7
CPU part\t: 0xc07
CPU revision\t: 3

processor\t: 4
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4
CPU implementer\t: 0x41
CPU architecture: 7
CPU part\t: 0xc0f
CPU revision\t: 3
"""


def test_cpu_identity_names_what_decides_speed(tmp_path):
    from dyndnn.boards.onboard.runner import cpu_identity

    (tmp_path / "x86").write_text(X86)
    (tmp_path / "arm").write_text(BIG_LITTLE)
    x86 = cpu_identity(str(tmp_path / "x86"), logical=2)
    assert x86["cpu_isa"] == "sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16"
    assert (
        x86["cpu_identity"]
        == "vendor AuthenticAMD family 25 model 17 stepping 1; isa sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16; 2 cpus"
    )
    arm = cpu_identity(str(tmp_path / "arm"), logical=8)
    assert arm["cpu_model_id"] == "0xc07,0xc0f" and arm["cpu_isa"] == "neon vfpv4", "both clusters of a big.LITTLE board"
    assert cpu_identity(str(tmp_path / "absent"), logical=1)["cpu_identity"] == ""


def _with_identity(record, dest, isa: str):
    """The record as a results folder whose board facts carry a CPU identity with these ISA flags."""
    run = as_results(record, dest)
    boards = pd.read_csv(run / "tables/boards.csv")
    facts = {
        "cpu_vendor": "AuthenticAMD",
        "cpu_family": "25",
        "cpu_model_id": "17",
        "cpu_stepping": "1",
        "cpu_isa": isa,
        "cpu_logical": "2",
    }
    facts["cpu_identity"] = f"vendor AuthenticAMD family 25 model 17 stepping 1; isa {isa}; 2 cpus; onnxruntime 1.32.0"
    extra = pd.DataFrame([{"board": "local", "fact": k, "value": v} for k, v in facts.items()])
    pd.concat([boards[~boards.fact.isin(list(facts))], extra]).to_csv(run / "tables/boards.csv", index=False)
    return run


def test_latency_is_compared_only_between_equal_cpu_identities(capsys, tmp_path):
    ref = _with_identity(RECORD, tmp_path / "ref", "avx2 avx512_bf16")
    same = _with_identity(RECORD, tmp_path / "same", "avx2 avx512_bf16")
    other = _with_identity(RECORD, tmp_path / "other", "avx2")
    code, out, _ = run_compare(capsys, ref, same, "--all")
    latency = [line for line in out.splitlines() if line.lstrip().startswith(("latency_ms", "latency_ratio"))]
    assert code == 0 and latency and all("reproduced" in line for line in latency)
    code, out, _ = run_compare(capsys, ref, other, "--all")
    latency = [line for line in out.splitlines() if line.lstrip().startswith(("latency_ms", "latency_ratio"))]
    assert latency and all("not comparable" in line and "different CPU: avx512_bf16 vs -" in line for line in latency)
    assert re.search(r"\d+ reproduced, 0 differ, \d+ inconclusive, \d+ not comparable", out)


def test_an_old_record_without_cpu_identities_is_read_and_its_latencies_not_compared(capsys, tmp_path):
    ref = as_results(RECORD, tmp_path / "old")
    boards = pd.read_csv(ref / "tables/boards.csv")
    boards[~boards.fact.str.startswith("cpu_")].to_csv(ref / "tables/boards.csv", index=False)
    run = _with_identity(RECORD, tmp_path / "new", "avx2")
    code, out, _ = run_compare(capsys, ref, run, "--all")
    latency = [line for line in out.splitlines() if line.lstrip().startswith("latency_ms")]
    assert code == 0 and latency and all("CPU identity unknown in the reference" in line for line in latency)


def test_sittings_are_recorded_and_summed(tmp_path, monkeypatch):
    """Each invocation is a sitting (host, CPU identity); a killed one ends at its last file; the
    record lists them all and its wall_s is their sum."""
    import json
    import os
    from datetime import datetime, timedelta, timezone

    from dyndnn.results import record as rec

    results = tmp_path / "results"
    t0 = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)
    clock = iter([t0, t0 + timedelta(hours=2), t0 + timedelta(hours=3)])
    monkeypatch.setattr(rec, "_now", lambda: next(clock))
    rec.mark_started(results)  # 09:00, then killed: no end handler
    (results / "tables").mkdir()
    (results / "tables/x.csv").write_text("a\n1\n")
    last = (t0 + timedelta(minutes=50)).timestamp()
    os.utime(results / "tables/x.csv", (last, last))
    rec.mark_started(results)  # 11:00, the second sitting
    rec.mark_finished(results, "success")  # 12:00
    sittings = rec.read_sittings(results)
    assert [s["outcome"] for s in sittings] == ["interrupted (end: its last file written)", "success"]
    assert sittings[0]["finished"] == "2026-12-03T09:50:00+00:00" and sittings[1]["cpu_identity"] == rec.cpu_identity()["cpu_identity"]
    assert sittings[1]["commit"] == rec.git_state(".")["commit"] != "unknown"  # the code each sitting ran (the tests run in this checkout)
    closed = rec._closed(sittings, t0)
    assert [s["wall_s"] for s in closed] == [3000.0, 3600.0]
    assert json.loads((results / "sittings.json").read_text()) == sittings


def _as_precision(record, dest, precision: str, seeds_std: float | None = None, shift: float = 0.0):
    """The record as a results folder trained in `precision`; with `seeds_std`, a three-seed
    summary with that top-1 / confidence spread; `shift` moves every dynamic top-1."""
    import json

    run = as_results(record, dest)
    meta = json.loads((run / "tables/accuracy.meta.json").read_text())
    meta["training_precision"] = {"dynamic": [precision]}
    (run / "tables/accuracy.meta.json").write_text(json.dumps(meta))
    acc = pd.read_csv(run / "tables/accuracy.csv")
    acc.loc[acc.model == "dynamic", "top1"] += shift
    acc = acc.assign(seed=0)
    acc.to_csv(run / "tables/accuracy.csv", index=False)
    seeds = acc
    if seeds_std is not None:  # seeds 0, 1, 2 at -s, 0, +s: mean as the primary seed's, sample std s
        seeds = pd.concat(
            [
                acc.assign(seed=k, top1=acc.top1 + d, confidence_norm=acc.confidence_norm + d)
                for k, d in ((0, 0.0), (1, -seeds_std), (2, seeds_std))
            ],
            ignore_index=True,
        )
    seeds.to_csv(run / "tables/accuracy_seeds.csv", index=False)
    analysis.seed_summary(seeds).to_csv(run / "tables/seed_summary.csv", index=False)
    return run


def test_a_bf16_run_within_the_measured_spread_of_an_fp32_reference_reproduces(capsys, tmp_path):
    """Tolerance = max(top1_pts, seed_sigmas x the reference's pooled seed std): 1.5 points against
    a 3-seed spread of 1 point (2 sigmas = 2 points) reproduce, and the row names both precisions;
    5 points still differ (exit 1)."""
    ref = _as_precision(RECORD, tmp_path / "ref", "fp32", seeds_std=0.01)
    close = _as_precision(RECORD, tmp_path / "close", "bf16", shift=0.015)
    code, out, _ = run_compare(capsys, ref, close, "--all", "--seed-sigmas", "2")
    top1 = [line for line in out.splitlines() if line.lstrip().startswith("top1") and "dynamic g" in line]
    assert code == 0 and len(top1) == 4
    assert all("reproduced" in line and "2 pts (2 x pooled seed std)" in line and "trained in fp32 vs bf16" in line for line in top1)
    assert all("(mean of 3 seeds)" in line for line in top1)
    far = _as_precision(RECORD, tmp_path / "far", "bf16", shift=0.05)
    code, out, _ = run_compare(capsys, ref, far, "--seed-sigmas", "2")
    assert code == 1 and sum("differs" in line for line in out.splitlines() if line.lstrip().startswith("top1")) == 4


def test_summary_prints_a_records_own_numbers(capsys, tmp_path):
    """`dyndnn summary` (what README tables are made from): provenance, one row per technique and
    configuration with the seeds' mean top-1, every claim of the shipped claims file, time per rule."""
    import json

    import yaml

    assert main(["summary", str(RECORD)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((RECORD / "manifest.json").read_text())
    assert manifest["git_commit"] in out and f"{manifest['wall_s']} s in {len(manifest['sittings'])} sitting(s)" in out
    train, data = manifest["config"]["train"], manifest["config"]["data"]
    assert f"{train['epochs']} epochs per technique and stage, batch {train['batch_size']}" in out
    assert f"({data['train_subset']:,} training / {data['test_subset']:,} test images)" in out
    seeds = pd.read_csv(RECORD / "tables/seed_summary.csv")
    for row in seeds.itertuples():
        assert f"| {row.model} | {row.groups} | {row.n_seeds} | {100 * row.top1_mean:.2f} |" in out
    for claim in yaml.safe_load((RECORD / "claims.yaml").read_text())["claims"]:
        assert f"| {claim['id']} |" in out
    assert "| train_increment |" in out
    results = tmp_path / "results"  # a results folder is not a record: refused, exit 2
    (results / "tables").mkdir(parents=True)
    shutil.copy(RECORD / "tables/accuracy.meta.json", results / "tables")
    assert main(["summary", str(results)]) == 2


def test_the_config_line_names_per_stage_epochs_and_lr_where_a_record_sets_them():
    """A record whose stages train other epochs (or LR) than its baselines says so: the README's
    provenance line must not claim one budget for every technique and stage."""
    from dyndnn.results.summary import _recipe

    train = {"epochs": 10, "batch_size": 256, "schedule": "onecycle", "lr": 0.1, "distill": 0.5}
    assert "10 epochs per technique and stage, batch 256" in _recipe({"train": train})
    staged = _recipe({"train": {**train, "stage_epochs": [12, 12, 12, 14], "stage_lr": [0.1, 0.2, 0.2, 0.2]}})
    assert "10 epochs per baseline, 12 / 12 / 12 / 14 per incremental stage, stages' peak lr 0.1 / 0.2 / 0.2 / 0.2, batch 256" in staged


def test_the_documents_record_blocks_equal_what_the_shipped_records_render():
    """Every block of a record (<!-- record PATH: NAME -->, PATH relative to the document) in the
    README and docs/ is what `dyndnn summary --readme` renders from that verified record today: a
    re-made record without its blocks re-rendered fails here (make readme-tables)."""
    from dyndnn.results.summary import BLOCK, update_readme

    seen = set()
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for record in sorted({m["record"] for m in BLOCK.finditer(doc.read_text())}):
            path = (doc.parent / record).resolve()
            seen.add(path.relative_to(REPO).as_posix())
            assert update_readme(doc, path, check=True) == [], f"{doc.name}: blocks of {record} are stale: make readme-tables"
    assert {"reference/main", "reference/quick"} <= seen, seen


def test_readme_blocks_are_checked_then_rewritten_from_the_record(tmp_path, capsys):
    """--check names a stale block and writes nothing (exit 1); without it the blocks are
    rewritten from the record's own numbers and a second check passes; a README with no block
    for the record, or an unknown block, is refused (exit 2)."""
    readme = tmp_path / "README.md"
    record = REPO / "reference/main"  # a marker's path may be absolute (else relative to the README's folder)
    text = f"intro\n<!-- record {record}: accuracy -->\n| stale |\n<!-- end record -->\nmiddle\n<!-- record {record}: targets -->\n<!-- end record -->\nend\n"
    readme.write_text(text)
    assert main(["summary", str(record), "--readme", str(readme), "--check"]) == 1
    assert "stale: accuracy, targets" in capsys.readouterr().out and readme.read_text() == text
    assert main(["summary", str(record), "--readme", str(readme)]) == 0
    out = readme.read_text()
    assert out.startswith(f"intro\n<!-- record {record}: accuracy -->\n| technique |") and "| stale |" not in out
    assert out.endswith("<!-- end record -->\nend\n")
    seeds = pd.read_csv(record / "tables/seed_summary.csv").sort_values("groups")
    dyn, static = (seeds[seeds.model == m].top1_mean for m in ("dynamic", "static"))
    spread = seeds[seeds.model == "dynamic"].top1_std  # the record has three seeds: mean +- std in every cell
    assert "| dynamic (ours) | " + " / ".join(f"{100 * v:.2f} +- {100 * e:.2f}" for v, e in zip(dyn, spread)) + " |" in out
    assert re.search(rf"\| {100 * static.iloc[-1]:.2f} \+- \d\.\d\d % \| {'holds' if static.iloc[-1] >= 0.85 else 'missed'} \|", out)
    gap = 100 * (static.iloc[-1] - dyn.iloc[-1])
    assert f"({gap:.2f} points below) | {'holds' if gap <= 1.5 else 'missed'} |" in out
    assert main(["summary", str(record), "--readme", str(readme), "--check"]) == 0
    readme.write_text(f"<!-- record {record}: colours -->\n<!-- end record -->\n")
    assert main(["summary", str(record), "--readme", str(readme)]) == 2
    assert "unknown block(s) colours" in capsys.readouterr().err
    readme.write_text("no blocks\n")
    assert main(["summary", str(record), "--readme", str(readme), "--check"]) == 2
    assert "no block names" in capsys.readouterr().err


def test_a_failed_record_leaves_nothing_half_made(tmp_path, monkeypatch):
    """A record that fails while its files are copied (a full disk, a vanished file) leaves
    neither a staging folder nor a partial record; an earlier record stays as it was."""
    import shutil as sh

    from dyndnn.results import record as rec

    results = as_results(RECORD, tmp_path / "results")
    manifest = json.loads((RECORD / "manifest.json").read_text())
    out = tmp_path / "record"
    out.mkdir()
    (out / "earlier.txt").write_text("an earlier record")
    copies = []

    def failing(src, dst, *a, **k):
        copies.append(src)
        if len(copies) == 5:
            raise OSError(28, "No space left on device")
        return sh.copy2(src, dst)

    monkeypatch.setattr(rec.shutil, "copyfile", failing)
    with pytest.raises(OSError, match="No space left"):
        rec.make_record(results, out, manifest["config"], manifest["configfiles"], {"commit": "0" * 40, "dirty": False}, ["fp32"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record", "results"]  # no record.tmp
    assert [p.name for p in out.iterdir()] == ["earlier.txt"]
