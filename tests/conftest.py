"""Shared fixtures: repository paths, the real CIFAR-10 (an offline archive or the cached
official release), fake data."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DATA_ENV, REPO, make_image_tar, real_cifar, snakemake, write_config


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def cifar_data() -> dict:
    """Config edits that point a run at the real CIFAR-10 (see helpers.real_cifar)."""
    edits = real_cifar()
    if edits is None:
        pytest.skip(
            f"no real CIFAR-10: give an offline archive (`make test DATA=<archive.tar.gz>` or ${DATA_ENV}), "
            "or download the official release once (`make data`)"
        )
    return edits


@pytest.fixture
def image_tar(tmp_path) -> Path:
    return make_image_tar(tmp_path / "fake.tar.gz", {"train": 6, "test": 3})


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, cifar_data):
    """One local run of config/quick.yaml (real CIFAR-10 subset), shared by every test that reads it."""
    workdir = tmp_path_factory.mktemp("quick")
    cfg = write_config(workdir / "quick.yaml", **cifar_data)
    proc = snakemake(workdir, "--configfile", str(cfg))
    return workdir, cfg, proc
