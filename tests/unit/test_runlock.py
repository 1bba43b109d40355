"""`make unlock` refuses while a run of the directory is alive, and unlocks after it died."""

from __future__ import annotations

import subprocess
import sys
import time

from helpers import REPO

from dyndnn import runlock

HOLD = "import sys, time, dyndnn.runlock as r; r.hold(sys.argv[1]); print('held', flush=True); time.sleep(60)"


def test_a_live_run_is_named_and_a_dead_ones_lock_is_free(tmp_path, capsys):
    assert runlock.alive(tmp_path) is None and runlock.main(["check", str(tmp_path)]) == 0  # never run here
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        assert runlock.alive(tmp_path) == f"pid {child.pid}"
        assert runlock.main(["check", str(tmp_path)]) == 2
        assert f"is alive (pid {child.pid}): not unlocking" in capsys.readouterr().err
    finally:
        child.kill()  # SIGKILL: no handler runs, the kernel releases the lock
        child.wait()
    deadline = time.time() + 5
    while runlock.alive(tmp_path) and time.time() < deadline:
        time.sleep(0.05)
    assert runlock.alive(tmp_path) is None and runlock.main(["check", str(tmp_path)]) == 0


def test_make_unlock_asks_the_run_lock_first():
    make = (REPO / "Makefile").read_text()
    recipe = make.split("\nunlock:", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("-m dyndnn.runlock check") < recipe.index("snakemake --unlock")
    assert "dyndnn.runlock.hold()" in (REPO / "Snakefile").read_text()
