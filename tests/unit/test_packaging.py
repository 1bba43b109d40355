"""What a reviewer's machine needs of the repository itself: the exact environment (a lock of
every package with hashes, made from pyproject.toml and requirements.in, and the versions a
record lists equal to it), a license and a citation, and nothing read from outside the checkout."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import tomllib
import yaml
from helpers import REPO

from dyndnn.provenance import PACKAGES


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    """name -> version of every package requirements.lock installs on this interpreter and
    platform (its environment markers evaluated); each must carry sha256 hashes."""
    from packaging.markers import Marker

    text = (REPO / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    out = {}
    for entry in entries:
        m = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;\\]+)(?: ; ([^\\\n]+))?", entry)
        assert m, f"requirements.lock: not a pinned requirement: {entry[:80]!r}"
        assert "--hash=sha256:" in entry, f"requirements.lock: {m[1]} has no hash"
        if m[3] is None or Marker(m[3].strip()).evaluate():
            out[_norm(m[1])] = m[2]
    return out


def _requirement_names(reqs: list[str]) -> set[str]:
    return {_norm(re.match(r"[A-Za-z0-9_.\-]+", r)[0]) for r in reqs}


def test_the_lock_pins_every_dependency_with_hashes_and_the_torch_build():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locked = _locked()
    wanted = _requirement_names(
        project["dependencies"] + [r for extra in ("test", "slurm") for r in project["optional-dependencies"][extra]]
    )
    assert wanted <= set(locked), sorted(wanted - set(locked))
    for line in (REPO / "requirements.in").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert locked[_norm(name)] == version, f"requirements.in pins {line}, the lock has {locked[_norm(name)]}: run make lock"


@pytest.mark.parametrize("record", ["reference/quick"])
def test_a_shipped_records_packages_are_the_locks(record):
    """A record made from an install of the lock lists the lock's versions."""
    locked = _locked()
    meta = json.loads((REPO / record / "tables/accuracy.meta.json").read_text())
    for name in PACKAGES:
        if name != "dyndnn":
            assert meta["packages"][name] == locked[_norm(name)], (record, name)


def test_license_and_citation_agree_with_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT" and cff["version"] == project["version"]
    paper = cff["preferred-citation"]
    assert "Group Convolution Pruning" in paper["title"] and paper["year"] == 2019
    assert {"arXiv:2105.03600", "10.5258/SOTON/D1245"} == {i["value"] for i in paper["identifiers"]}


def test_no_tracked_file_but_ci_reads_outside_the_checkout():
    """The repository must never need the team's environment: only CI names it, to pass the
    offline archive to the tests."""
    outside = "../" + "shared"  # spelled in two parts: this file is tracked too
    proc = subprocess.run(["git", "-C", str(REPO), "grep", "-l", "-F", outside, "--", "."], capture_output=True, text=True)
    if proc.returncode > 1:
        pytest.skip(f"not a git checkout: {proc.stderr.strip()}")
    assert proc.stdout.split() == [".ci/run"]
