"""The board-side code (runner, power, dvfs: what profile_board copies to a board) must run
on Python 3.6, the Python of JetPack 4 on the Jetson Nano. Checked statically with vermin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

BOARD_SIDE = ["runner.py", "power.py", "dvfs.py"]


def test_board_side_code_needs_at_most_python_3_6():
    files = [str(REPO / "src" / "dyndnn" / "boards" / "onboard" / f) for f in BOARD_SIDE]
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("vermin")), "--no-tips", "--violations", "--eval-annotations", "-t=3.6-", *files],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"board-side code needs a newer Python than 3.6:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("fresh, sessions", [(False, 2), (True, 6)])
def test_fresh_sessions_make_a_new_session_at_every_visit(monkeypatch, fresh, sessions):
    """profile.fresh_sessions: each visit samples a new session (its memory layout) instead of the
    worker's one, and warms it up in full; without it a worker keeps one session per point."""
    import numpy as np

    from dyndnn.boards.onboard import power, runner

    made, warmups = [], []
    monkeypatch.setitem(runner.RUNTIMES, "onnxruntime", lambda path, threads, device: made.append(path) or (lambda x: x))
    real_time_model = runner.time_model
    monkeypatch.setattr(
        runner, "time_model", lambda infer, vs, meter=None: warmups.append(vs["warmup"]) or real_time_model(infer, vs, meter)
    )
    plan = {
        "mappings": [{"name": "one", "cpus": sorted(__import__("os").sched_getaffinity(0))[:1], "threads": 1}],
        "models": [{"label": "a", "path": "a.onnx"}, {"label": "b", "path": "b.onnx"}],
        "settings": {"warmup": 7, "visit_warmup": 2, "min_runs": 3, "min_seconds": 0, "rounds": 3, "seed": 0, "fresh_sessions": fresh},
        "power": {},
    }
    worker = runner.Worker(plan, np.zeros(1), power.NoPower(), None)
    for rnd in range(3):
        worker.round(rnd)
    assert len(made) == sessions
    assert warmups == ([7] * 6 if fresh else [7, 7, 2, 2, 2, 2])


def test_workers_environment_sets_the_huge_page_tunable_and_keeps_the_others():
    from dyndnn.boards.onboard import runner

    env = runner.tunables_env(True, {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0"})
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}
    assert runner.tunables_env(False, {})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"


ALLOCATE = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
import runner
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
size = 64 << 20
p = libc.malloc(size)
ctypes.memset(p, 1, size)
print(runner.anon_huge_kb())
"""


def test_huge_pages_reach_a_workers_large_allocation():
    """The mechanism profile.huge_pages relies on, on this machine's real kernel and glibc: a
    process started with tunables_env(True) holds a 64 MiB malloc on huge pages; with (False) and
    the kernel's THP mode madvise, on none."""
    import platform

    from dyndnn.boards.onboard import runner

    mode = runner.thp_mode("/")
    libc, version = platform.libc_ver()
    if mode not in ("madvise", "always") or libc != "glibc" or tuple(map(int, version.split(".")[:2])) < (2, 35):
        pytest.skip(f"no huge pages by glibc.malloc.hugetlb here (THP mode {mode}, {libc} {version})")
    onboard = str(REPO / "src/dyndnn/boards/onboard")

    def held_kb(huge_pages):
        proc = subprocess.run(
            [sys.executable, "-c", ALLOCATE, onboard], env=runner.tunables_env(huge_pages), capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout)

    assert held_kb(True) >= 32 << 10  # most of the 64 MiB on 2 MiB pages
    if mode == "madvise":
        assert held_kb(False) == 0


def test_thp_mode_reads_the_kernels_choice(tmp_path):
    from dyndnn.boards.onboard import runner

    assert runner.thp_mode(str(tmp_path)) is None
    f = tmp_path / "sys/kernel/mm/transparent_hugepage/enabled"
    f.parent.mkdir(parents=True)
    f.write_text("always [madvise] never\n")
    assert runner.thp_mode(str(tmp_path)) == "madvise"
