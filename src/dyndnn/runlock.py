"""Which run of a results directory is alive. Snakemake's own lock (`.snakemake/locks`) stays
behind when a run is killed, so `snakemake --unlock` cannot tell a dead run from a live one and
releases both; a second run then trains beside the first. The Snakefile's onstart handler holds an
OS file lock here for as long as its process lives (the kernel releases it however the process
ends), and `make unlock` asks it first: `python -m dyndnn.runlock check` exits 2, naming the
process, while a run of this directory is alive."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

__all__ = ["LOCK", "hold", "alive", "main"]

LOCK = ".snakemake/dyndnn-run.lock"
_held: list[int] = []  # the descriptor this process holds (kept open until it exits)


def hold(directory: str | Path = ".") -> None:
    """Take the run lock of `directory` for the rest of this process (the Snakefile's onstart)."""
    path = Path(directory) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"a run of {Path(directory).resolve()} is alive ({_owner(path)}); wait for it, or stop it first") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}\n".encode())
    _held.append(fd)


def _owner(path: Path) -> str:
    try:
        return path.read_text().strip() or "pid unknown"
    except OSError:
        return "pid unknown"


def alive(directory: str | Path = ".") -> str | None:
    """The live run's 'pid N' when a run of `directory` holds the lock, else None."""
    path = Path(directory) / LOCK
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _owner(path)
    finally:
        os.close(fd)
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "check" or len(args) > 2:
        print("usage: python -m dyndnn.runlock check [DIRECTORY]", file=sys.stderr)
        return 2
    directory = args[1] if len(args) == 2 else "."
    owner = alive(directory)
    if owner:
        print(
            f"dyndnn: a run of {Path(directory).resolve()} is alive ({owner}): not unlocking (its lock is not stale); "
            "wait for it, or stop it (Ctrl-C, or kill that process) and unlock then",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
