"""The board-side code (runner, power, dvfs: what profile_board copies to a board) must run
on Python 3.6, the Python of JetPack 4 on the Jetson Nano. Checked statically with vermin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
