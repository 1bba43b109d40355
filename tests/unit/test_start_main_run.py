"""tools/start_main_run.sh: a run of HEAD in its own clone, resumed in the same clone (also after
HEAD moved on, by naming the run directory), never two sittings at once, never a dirty clone."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import REPO

SCRIPT = REPO / "tools/start_main_run.sh"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**os.environ, **GIT_ENV}).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "checkout"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "Snakefile").write_text("# a workflow\n")
    git(repo, "add", "Snakefile")
    git(repo, "commit", "-qm", "first")
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(b"data")
    return repo, archive


def start(repo: Path, archive: Path, *args: str, cmd: str = "echo ran >> ran.txt") -> subprocess.CompletedProcess:
    env = {**os.environ, "DATA": str(archive), "MAIN_JOB_CMD": cmd}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=repo, capture_output=True, text=True, env=env, timeout=60)


def wait_for(path: Path, lines: int) -> None:
    for _ in range(200):
        if path.is_file() and len(path.read_text().splitlines()) >= lines:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {lines} lines")


def test_a_run_of_head_resumes_in_its_own_clone(checkout, tmp_path):
    repo, archive = checkout
    runs = tmp_path / "runs"
    sha = git(repo, "rev-parse", "--short", "HEAD")
    first = start(repo, archive, str(runs))
    assert first.returncode == 0, first.stderr
    run = runs / f"main-{sha}"
    wait_for(run / "ran.txt", 1)
    assert git(run, "rev-parse", "--short", "HEAD") == sha
    # HEAD moves on: naming the run directory resumes that run at its own commit, and its
    # untracked run.log / run.pid do not count as local changes
    (repo / "Snakefile").write_text("# changed\n")
    git(repo, "commit", "-qam", "second")
    again = start(repo, archive, str(run))
    assert again.returncode == 0, again.stderr
    wait_for(run / "ran.txt", 2)
    assert git(run, "rev-parse", "--short", "HEAD") == sha
    assert (run / "run.log").read_text().count("== sitting started") == 2
    assert sorted(p.name for p in runs.iterdir()) == [f"main-{sha}"]


def test_a_running_sitting_or_a_dirty_clone_is_refused(checkout, tmp_path):
    repo, archive = checkout
    runs = tmp_path / "runs"
    busy = start(repo, archive, str(runs), cmd="sleep 30")
    assert busy.returncode == 0, busy.stderr
    run = next(runs.iterdir())
    pid = int((run / "run.pid").read_text())
    try:
        second = start(repo, archive, str(run))
        assert second.returncode == 2 and "still running" in second.stderr
    finally:
        os.killpg(pid, signal.SIGTERM)  # its own process session: the whole sitting
    for _ in range(100):
        if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0:
            break
        time.sleep(0.05)
    (run / "Snakefile").write_text("# edited in the run\n")
    dirty = start(repo, archive, str(run))
    assert dirty.returncode == 2 and "local changes" in dirty.stderr
    assert not (run / "ran.txt").exists()


def test_a_missing_archive_is_named(checkout, tmp_path):
    repo, _ = checkout
    proc = start(repo, tmp_path / "absent.tar.gz", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "no such archive" in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", [".", "runs"])
def test_a_run_inside_the_checkout_is_refused(checkout, where):
    # "." would run the main job in the checkout itself (it has a Snakefile and .git), "runs"
    # would clone into it: either way work on main would change the code under a running job
    repo, archive = checkout
    proc = start(repo, archive, where)
    assert proc.returncode == 2 and "inside this checkout" in proc.stderr
    assert not (repo / "ran.txt").exists() and not (repo / "runs").exists()


@pytest.mark.parametrize(
    "advance, at_head, moves",
    [
        # the training still to do goes on; the profile reruns (snakemake 9 prints its table twice)
        ("1", "train_baseline 2\nprofile_board 1\naggregate 1\ntrain_baseline 2\nprofile_board 1", True),
        ("1", "train_baseline 3\nteacher_targets 1\nprofile_board 1", False),  # finished training would be redone
        ("force", "train_baseline 3", True),
    ],
)
def test_advance_moves_a_stopped_run_to_head_unless_it_would_train_again(checkout, tmp_path, advance, at_head, moves):
    """ADVANCE=1: a changed measurement reruns on the run's finished training at HEAD; a change
    that would redo training (HEAD's dry run lists more jobs of a training rule than the run's
    commit does) leaves the run at its commit and starts nothing, unless ADVANCE=force."""
    repo, archive = checkout
    (repo / "dryrun.txt").write_text("train_baseline 2\n")  # what the dry run lists at the run's commit
    git(repo, "add", "dryrun.txt")
    git(repo, "commit", "-qm", "the run's commit")
    runs = tmp_path / "runs"
    sha = git(repo, "rev-parse", "--short", "HEAD")
    assert start(repo, archive, str(runs)).returncode == 0
    run = runs / f"main-{sha}"
    wait_for(run / "ran.txt", 1)
    for _ in range(100):  # the first sitting ends (its lock released)
        if subprocess.run(["flock", "-n", str(run / "run.lock"), "true"]).returncode == 0:
            break
        time.sleep(0.05)
    (repo / "dryrun.txt").write_text(at_head + "\n")
    git(repo, "commit", "-qam", "the instrument changed")
    head = git(repo, "rev-parse", "--short", "HEAD")
    env = {
        **os.environ,
        "DATA": str(archive),
        "MAIN_JOB_CMD": "echo ran >> ran.txt",
        "ADVANCE": advance,
        "MAIN_JOB_DRYRUN": "cat dryrun.txt",
    }
    proc = subprocess.run(["bash", str(SCRIPT), str(run)], cwd=repo, capture_output=True, text=True, env=env, timeout=60)
    if moves:
        assert proc.returncode == 0, proc.stderr
        assert f"from {sha} to {head}" in proc.stdout
        if advance == "1":
            assert proc.stdout.splitlines()[0].endswith("still to run: train_baseline 2"), proc.stdout
        wait_for(run / "ran.txt", 2)
        assert git(run, "rev-parse", "--short", "HEAD") == head
    else:
        assert proc.returncode == 2 and "would train again (teacher_targets +1, train_baseline +1)" in proc.stderr, proc.stderr
        assert git(run, "rev-parse", "--short", "HEAD") == sha
        time.sleep(0.2)
        assert (run / "ran.txt").read_text().count("ran") == 1
