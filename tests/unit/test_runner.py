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
