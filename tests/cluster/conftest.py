"""A real single-node SLURM cluster on this machine (Debian's slurm-wlm and munge).

munged, slurmctld and slurmd run in the foreground as children of the test session,
with a private munge key and socket, their own slurm.conf (loopback, free ports)
and state under a temporary directory; everything is stopped afterwards. No
accounting database: the executor plugin queries job states with squeue.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "srun")


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


SLURM_CONF = """\
ClusterName=dyndnn-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Yields the environment (SLURM_CONF set) under which sbatch/squeue reach the cluster."""
    missing = [d for d in DAEMONS if not _which(d)]
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} missing): .ci/run installs Debian's slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("the single-node SLURM test starts slurmd, which needs root")
    root = tmp_path_factory.mktemp("slurm")
    root.chmod(0o755)
    for d in ("state", "spool", "log", "munge"):
        (root / d).mkdir()
        (root / d).chmod(0o755)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge_socket = root / "munge" / "munge.sock"
    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=socket.gethostname().split(".")[0],
            user="root",
            munge_socket=munge_socket,
            ctld_port=free_port(),
            d_port=free_port(),
            root=root,
            node="dyndnn-node",
            cpus=os.cpu_count() or 1,
            mem_mb=4096,
        )
    )
    # The jobstep plugin drops every SLURM_* variable before its nested srun, so srun
    # inside a job would look for /etc/slurm/slurm.conf; a real cluster has one there.
    # This test cluster leaves /etc alone and puts an srun on PATH that names its config.
    bindir = root / "bin"
    bindir.mkdir()
    (bindir / "srun").write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {_which("srun")} "$@"\n')
    (bindir / "srun").chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{bindir}:{os.environ['PATH']}"}
    logs = {name: open(root / "log" / f"{name}.out", "w") for name in ("munged", "slurmctld", "slurmd")}
    commands = {
        "munged": [
            _which("munged"),
            "--foreground",
            "--force",
            f"--socket={munge_socket}",
            f"--key-file={key}",
            f"--pid-file={root}/munge/munged.pid",
            f"--log-file={root}/log/munged.log",
            f"--seed-file={root}/munge/seed",
        ],
        "slurmctld": [_which("slurmctld"), "-D", "-i", "-f", str(conf)],
        "slurmd": [_which("slurmd"), "-D", "-N", "dyndnn-node", "-f", str(conf)],
    }
    procs = []
    try:
        for name, cmd in commands.items():
            procs.append(subprocess.Popen(cmd, env=env, stdout=logs[name], stderr=subprocess.STDOUT))
            if name == "munged":
                _wait(lambda: munge_socket.exists(), 10, "munged did not create its socket", root)
        _wait(lambda: _node_state(env) in ("idle", "mix", "alloc"), 60, "the SLURM node did not come up", root)
        yield {"env": env, "root": root, "conf": conf}
    finally:
        subprocess.run([_which("scancel") or "scancel", "--user", "root"], env=env, capture_output=True)
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()


def _node_state(env) -> str:
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True)
    return proc.stdout.strip().rstrip("*~#")


def _wait(ready, seconds: float, what: str, root: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((root / "log").iterdir()))
    raise RuntimeError(f"{what} within {seconds} s\n{logs}")
