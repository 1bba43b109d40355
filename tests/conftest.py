"""Shared fixtures: repository paths, the offline CIFAR-10 archive, fake data."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, SHARED_CIFAR, make_image_tar, snakemake, write_config


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def cifar_archive() -> Path:
    if not SHARED_CIFAR.is_file():
        pytest.skip(f"offline CIFAR-10 archive not found at {SHARED_CIFAR} (see README: data sources)")
    return SHARED_CIFAR


@pytest.fixture
def image_tar(tmp_path) -> Path:
    return make_image_tar(tmp_path / "fake.tar.gz", {"train": 6, "test": 3})


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, cifar_archive):
    """One local run of config/quick.yaml (real CIFAR-10 subset), shared by every test that reads it."""
    workdir = tmp_path_factory.mktemp("quick")
    cfg = write_config(workdir / "quick.yaml", **{"data.path": str(cifar_archive)})
    proc = snakemake(workdir, "--configfile", str(cfg))
    return workdir, cfg, proc
