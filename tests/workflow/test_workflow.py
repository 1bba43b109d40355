"""The pipeline as users run it: snakemake on the real Snakefile, in a temporary directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest
import torch
import yaml
from helpers import REPO, job_counts, make_image_tar, snakemake, write_config


def test_dry_run_of_the_default_config(tmp_path):
    proc = snakemake(tmp_path, "-n")
    traced = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "-n",
            "--cores",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert traced.returncode == 0 and "| dyndnn.config" in traced.stderr
    assert not re.search(r"\| +torch$", traced.stderr, re.M), "the DAG parse must not import torch"
    jobs = job_counts(proc.stdout + proc.stderr)
    techniques = 1 + jobs["train_baseline"]  # the dynamic DNN and the four existing works
    assert jobs["train_increment"] == 4 and jobs["train_baseline"] == 4 and jobs["evaluate"] == techniques
    # one job per technique (its four configurations); the default's groups are grouped convolutions,
    # so there is no naive dense layout of nested layers to export beside them (dynamic-dense)
    assert jobs["export"] == techniques and jobs["profile_board"] == 1 and jobs["report"] == 1
    assert "results/onnx/dynamic/g4.onnx" in proc.stdout + proc.stderr and "dynamic-dense" not in proc.stdout + proc.stderr
    # The default design distils every stage from the static 100 % model: its logits of every
    # epoch's views are computed once (teacher_targets, from the width-4 job alone), and the
    # stages wait for them; the static widths are jobs of their own.
    out = proc.stdout + proc.stderr
    stage1 = out.split("output: results/models/dynamic/seed0/stage1.pt", 1)[0].rsplit("rule train_increment:", 1)[1]
    assert "results/models/dynamic/seed0/teacher_targets.pt" in stage1
    targets = out.split("output: results/models/dynamic/seed0/teacher_targets.pt", 1)[0].rsplit("rule teacher_targets:", 1)[1]
    assert "results/models/static/seed0/w4.pt" in targets and "final.pt" not in targets
    assert jobs["teacher_targets"] == 1 and jobs["train_static_width"] == 4


def _job_block(out: str, rule: str, output: str) -> str:
    return out.split(f"output: {output}", 1)[1].split("\n\n", 1)[0] + out.split(f"output: {output}", 1)[0].rsplit(f"rule {rule}:", 1)[1]


@pytest.mark.parametrize("config, side_by_side", [("config.yaml", True), ("quick.yaml", False)])
def test_training_jobs_share_the_cores_when_baselines_train_beside_the_chain(tmp_path, config, side_by_side):
    """With baselines, two training jobs run side by side (half the cores each) and the dynamic
    DNN's chain goes first; without them (the quick run: the chain alone) a job takes every core."""
    cfg = write_config(tmp_path / "run.yaml", config)  # the official release: a dry run downloads nothing
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg), cores="4")
    out = proc.stdout + proc.stderr
    stage = _job_block(out, "train_increment", "results/models/dynamic/seed0/stage2.pt")
    assert f"threads: {2 if side_by_side else 4}" in stage
    if side_by_side:
        # longest first: the chain, the slimmable network, the other widths widest first, pruned;
        # evaluations last
        priority = {
            ("train_increment", "results/models/dynamic/seed0/stage2.pt"): 5,
            ("train_static_width", "results/models/static/seed0/w4.pt"): 5,
            ("train_baseline", "results/models/slimmable/seed0/final.pt"): 4,
            ("train_static_width", "results/models/static/seed0/w3.pt"): 3,
            ("train_static_width", "results/models/static/seed0/w2.pt"): 2,
            ("train_static_width", "results/models/static/seed0/w1.pt"): 1,
            ("train_baseline", "results/models/pruned/seed0/final.pt"): 1,
            ("evaluate", "results/eval/seed0/static.csv"): 0,
        }
        for (rule, output), expected in priority.items():
            block = _job_block(out, rule, output)
            assert (f"priority: {expected}" in block) if expected else ("priority:" not in block), (rule, output)
        assert "threads: 2" in _job_block(out, "evaluate", "results/eval/seed0/static.csv")


@pytest.mark.parametrize(
    "edits, message",
    [
        ({"model.groups": 5}, "not divisible by groups=5"),
        ({"ablation": {"warp": {"train": {"schedule": "warp"}}}}, "ablation.warp.train.schedule: 'warp' is not one of"),
        ({"ablation": {"zero": {"train": {"epochs": 0}}}}, "ablation.zero.train.epochs: 0 is less than the minimum of 1"),
        ({"simulate": {"board": "nosuch"}}, "simulate.board 'nosuch' is not a profiled board"),
        ({"data.source": "images", "data.path": "/nonexistent/cifar.tar.gz"}, "data.path /nonexistent/cifar.tar.gz does not exist"),
        ({"data.source": "images", "data.path": "IMAGE_TAR", "data.sha256": "0" * 64}, "does not match data.sha256"),
        (
            {"report": {"title": "t", "top1_floor": 0.2, "reference": "reference/nosuch"}},
            "report.reference 'reference/nosuch': ",
        ),
    ],
)
def test_bad_config_is_rejected_before_any_job(tmp_path, edits, message, image_tar):
    edits = {k: str(image_tar) if v == "IMAGE_TAR" else v for k, v in edits.items()}
    cfg = write_config(tmp_path / "bad.yaml", **edits)
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
    assert not (tmp_path / "results").exists()


def test_a_tampered_reference_record_stops_the_dry_run(tmp_path):
    """report.reference is verified at parse time, not in the last job."""
    record = tmp_path / "tampered"
    shutil.copytree(REPO / "reference/quick", record)
    (record / "tables/accuracy.csv").write_text((record / "tables/accuracy.csv").read_text().replace("0.", "0.9", 1))
    cfg = write_config(tmp_path / "ref.yaml", **{"report": {"title": "t", "top1_floor": 0.2, "reference": str(record)}})
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    assert "tables/accuracy.csv: sha256" in proc.stdout + proc.stderr and "does not match the manifest" in proc.stdout + proc.stderr


class Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def table_with(tables, *columns):
    for t in tables:
        if t and all(c in t[0] for c in columns):
            return [dict(zip(t[0], row)) for row in t[1:]]
    raise AssertionError(f"no table with columns {columns}")


@pytest.mark.slow
def test_quick_run_report_has_accuracy_and_latency_for_every_configuration(quick_run):
    workdir, _, _ = quick_run
    html = (workdir / "results/report/index.html").read_text()
    parser = Tables()
    parser.feed(html)
    accuracy = table_with(parser.tables, "groups", "width_pct", "top1")
    assert sorted(int(r["groups"]) for r in accuracy) == [1, 2, 3, 4]
    assert all(0 < float(r["top1"]) <= 1 for r in accuracy)
    confidence = table_with(parser.tables, "groups", "confidence_norm")
    assert [float(r["confidence_norm"]) for r in confidence][-1] == 1.0
    latency = table_with(parser.tables, "groups", "mapping", "p90_ms")
    for mapping in ("one-core", "all-cores"):
        rows = [r for r in latency if r["mapping"] == mapping and r["model"] == "dynamic"]
        assert sorted(int(r["groups"]) for r in rows) == [1, 2, 3, 4]
        assert all(float(r["p50_ms"]) > 0 for r in rows)
    assert {r["model"] for r in latency} == {"dynamic"}  # the main job's design: grouped, so no naive layout
    exports = pd.read_csv(workdir / "results/tables/exports.csv").set_index(["model", "groups"])["macs_executed"]
    evaluated = pd.read_csv(workdir / "results/tables/accuracy.csv").set_index(["model", "groups"])
    for k in (1, 2, 3, 4):  # the exported graph executes exactly the connected MACs
        assert exports["dynamic", k] == evaluated.loc[("dynamic", k), "macs"] == evaluated.loc[("dynamic", k), "macs_executed"]
    from dyndnn.results.figures import FIGURES

    assert html.count("data:image/png;base64,") == len(FIGURES)
    assert (workdir / "results/tables/accuracy.meta.json").is_file()
    claims = table_with(parser.tables, "claim", "verdict", "reason")
    assert len(claims) == len(yaml.safe_load((REPO / "config/claims.yaml").read_text())["claims"])
    verdicts = {"holds", "does not hold"}  # each also "..., within noise" where it rests on differences inside the noise
    assert {r["verdict"] for r in claims} <= verdicts | {f"{v}, within noise" for v in verdicts} | {"not measurable"}


@pytest.mark.slow
def test_nested_design_exports_the_split_layout_and_measures_its_naive_reference(tmp_path, cifar_data):
    """The nested design (tests/configs/nested.yaml, tiny): each output group's own op over the
    inputs it reads (split layout) and, beside it, the dense layout with zero blocks (dynamic-dense)."""
    cfg = write_config(tmp_path / "quick.yaml", **cifar_data)
    snakemake(tmp_path, "--configfile", str(cfg), str(REPO / "tests/configs/nested.yaml"))
    parser = Tables()
    parser.feed((tmp_path / "results/report/index.html").read_text())
    latency = table_with(parser.tables, "groups", "mapping", "p90_ms")
    for mapping in ("one-core", "all-cores"):
        for model in ("dynamic", "dynamic-dense"):  # the shipped layout and the naive reference
            rows = [r for r in latency if r["mapping"] == mapping and r["model"] == model]
            assert sorted(int(r["groups"]) for r in rows) == [1, 2, 3, 4]
            assert all(float(r["p50_ms"]) > 0 for r in rows)
    layouts = table_with(parser.tables, "layout", "dynamic_ms", "naive_ms", "dynamic_macs_executed")
    assert len(layouts) == 8 and {r["layout"] for r in layouts} == {"split"}
    exports = pd.read_csv(tmp_path / "results/tables/exports.csv").set_index(["model", "groups"])["macs_executed"]
    evaluated = pd.read_csv(tmp_path / "results/tables/accuracy.csv").set_index(["model", "groups"])
    for k in (1, 2, 3, 4):  # the split graph executes the connected MACs; the naive one more from k = 2
        assert exports["dynamic", k] == evaluated.loc[("dynamic", k), "macs"] == evaluated.loc[("dynamic", k), "macs_executed"]
        assert (exports["dynamic-dense", k] > exports["dynamic", k]) == (k > 1)


@pytest.mark.slow
def test_editing_a_measurement_setting_reruns_only_profiling_and_after(quick_run, tmp_path):
    workdir, cfg, _ = quick_run
    edited = write_config(tmp_path / "edited.yaml", **{"data": yaml.safe_load(cfg.read_text())["data"], "profile.min_runs": 31})
    proc = snakemake(workdir, "-n", "--configfile", str(edited))
    jobs = job_counts(proc.stdout + proc.stderr)
    from dyndnn.results.figures import FIGURES

    # job_times follows too: it reads the profiling job's benchmark file
    expected = {"profile_board", "aggregate", "simulate_budget", "job_times", "report", "record", "all", *(f"figure_{f}" for f in FIGURES)}
    assert set(jobs) == expected, jobs


@pytest.mark.slow
def test_editing_one_stage_reruns_that_stage_and_what_follows_only(quick_run, tmp_path):
    """Stage k's job sees stage k's epochs and LR only: a new stage-4 value reruns stage 4, not 1-3."""
    workdir, cfg, _ = quick_run
    data = yaml.safe_load(cfg.read_text())["data"]
    same = write_config(tmp_path / "same.yaml", **{"data": data, "train.stage_epochs": [1, 1, 1, 1], "train.stage_lr": [0.05] * 4})
    proc = snakemake(workdir, "-n", "--configfile", str(same))  # the same recipe written per stage: no stage reruns
    assert "train_increment" not in job_counts(proc.stdout + proc.stderr)
    edited = write_config(tmp_path / "edited.yaml", **{"data": data, "train.stage_epochs": [1, 1, 1, 2]})
    proc = snakemake(workdir, "-n", "--configfile", str(edited))
    out = proc.stdout + proc.stderr
    assert job_counts(out)["train_increment"] == 1 and "output: results/models/dynamic/seed0/stage4.pt" in out


@pytest.mark.slow
def test_editing_provenance_only_settings_reruns_only_the_report_and_the_record(quick_run, tmp_path):
    """A title (or where training runs) changes no number: no table or figure is remade."""
    workdir, cfg, _ = quick_run
    data = yaml.safe_load(cfg.read_text())["data"]
    edited = write_config(tmp_path / "edited.yaml", **{"data": data, "report.title": "another title", "runtime": {"device": "cpu"}})
    proc = snakemake(workdir, "-n", "--configfile", str(edited))
    assert set(job_counts(proc.stdout + proc.stderr)) == {"report", "record", "all"}


@pytest.mark.slow
def test_unchanged_config_has_nothing_to_do(quick_run):
    workdir, cfg, _ = quick_run
    proc = snakemake(workdir, "-n", "--configfile", str(cfg))
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_later_copy_of_the_archive_keeps_finished_jobs_and_other_bytes_rerun_them(tmp_path):
    """A run resumed after the archive was copied afresh (same bytes, newer timestamp) keeps its
    jobs; an archive with other images reruns the data jobs and everything after them."""
    archive = make_image_tar(tmp_path / "images.tar.gz", {"train": 2, "test": 1})
    cfg = write_config(
        tmp_path / "c.yaml", **{"data.source": "images", "data.path": str(archive), "data.train_subset": None, "data.test_subset": None}
    )
    # Snakemake compares the bytes of inputs up to 1 MB itself; the real archive (19 MB) is over
    # that, so its timestamp alone decided until the rule keyed it by content: emulate the size.
    target = ("--max-checksum-file-size", "0", "--configfile", str(cfg), "--", "results/data/dataset.json")
    snakemake(tmp_path, *target)
    later = archive.stat().st_mtime + 3600
    os.utime(archive, (later, later))
    proc = snakemake(tmp_path, "-n", *target)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    make_image_tar(archive, {"train": 2, "test": 1}, seed=1)
    proc = snakemake(tmp_path, "-n", *target)
    assert set(job_counts(proc.stdout + proc.stderr)) == {"download_data", "prepare_data"}


PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || (e.target && e.target.src || e.type).slice(0, 80))), true);
(orig => { console.error = (...a) => { window.__errors.push(a.join(" ")); orig(...a); }; })(console.error);
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const r = {images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length, errors: window.__errors};
  const pre = document.createElement("pre"); pre.id = "dyndnn-probe"; pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.slow
@pytest.mark.browser
def test_report_in_headless_chromium(quick_run, tmp_path):
    """Every image loads and nothing logs an error, in a real browser."""
    import json
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    workdir, _, _ = quick_run
    html = (workdir / "results/report/index.html").read_text()
    page = tmp_path / "index.html"
    page.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]  # fmt: skip
    proc = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="dyndnn-probe">(.*?)</pre>', proc.stdout)
    assert found, f"the page did not finish loading in Chromium: {proc.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    from dyndnn.results.figures import FIGURES

    assert result["images"] == len(FIGURES) and result["loaded"] == result["images"], result
    assert result["errors"] == [], result


@pytest.mark.slow
def test_snakemake_own_report(quick_run):
    workdir, cfg, _ = quick_run
    snakemake(workdir, "--configfile", str(cfg), "--report", "snakemake-report.html")
    text = (workdir / "snakemake-report.html").read_text(errors="replace")
    assert "fig5_tradeoffs" in text and "fig2_top1" in text


@pytest.mark.slow
def test_baselines_flow_through_the_same_rules(tmp_path, cifar_data):
    """Tiny widths and data, every baseline on: each is trained, evaluated, exported
    (parity-checked), profiled, and the claims against existing works become measurable."""
    cfg = write_config(
        tmp_path / "tiny.yaml",
        **{
            **cifar_data,
            "data.train_subset": 500,
            "data.test_subset": 200,
            "model.conv_channels": [16, 32, 32, 32, 32],
            "model.fc_features": [64, 64],
            "baselines": {
                "static": {"enabled": True},
                "slimmable": {"enabled": True},
                "truncated": {"enabled": True},
                "pruned": {"enabled": True, "finetune_epochs": 1},
            },
            "ablation": {"kd": {"description": "distilled from the static 100 % model", "train": {"distill": 0.5}}},
            "profile.min_runs": 10,
            "profile.min_seconds": 0.05,
            "report.top1_floor": 0.0,  # 500 images: every configuration counts, so the range claims have a verdict
        },
    )
    snakemake(tmp_path, "--configfile", str(cfg))
    parser = Tables()
    parser.feed((tmp_path / "results/report/index.html").read_text())
    accuracy = table_with(parser.tables, "groups", "width_pct", "top1")
    assert {r["model"] for r in accuracy} == {"dynamic", "static", "slimmable", "truncated", "pruned"}
    latency = table_with(parser.tables, "groups", "mapping", "p90_ms")
    assert {r["model"] for r in latency} == {"dynamic", "static", "slimmable", "truncated", "pruned"}  # grouped: no naive layout
    claims = {r["claim"]: r for r in table_with(parser.tables, "claim", "verdict", "reason")}
    time_claim = claims["Up to 2.73x wider dynamic range in time than existing works"]
    assert time_claim["verdict"] in ("holds", "does not hold"), time_claim
    memory = table_with(parser.tables, "model", "resident_bytes", "recoverable_compression")
    resident = {r["model"]: int(r["resident_bytes"].replace(",", "")) for r in memory}
    assert resident["static"] > resident["truncated"] and resident["pruned"] > resident["truncated"]
    techniques = table_with(parser.tables, "model", "groups", "confidence_norm", "resident_bytes")
    assert sorted((r["model"], r["groups"]) for r in techniques) == sorted((m, str(k)) for m in resident for k in range(1, 5))
    ablation = {r["design"]: r for r in table_with(parser.tables, "design", "distill", "vs_static_pts")}
    assert ablation["dynamic-kd"]["distill"] == "0.5 (T=4.0)" and ablation["dynamic"]["distill"] == "off"
    top1 = pd.read_csv(tmp_path / "results/tables/accuracy.csv").set_index(["model", "groups"])["top1"]
    assert float(ablation["dynamic"]["vs_static_pts"]) == pytest.approx(
        100 * (top1["dynamic", 4] - top1["static", 4]), abs=0.05
    )  # 3 significant digits
    kd = torch.load(tmp_path / "results/models/dynamic-kd/seed0/stage4.pt", weights_only=False)
    assert kd["train_config"]["distill"] == 0.5 and "stage" in kd["history"][-1]
