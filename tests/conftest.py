"""Shared fixtures: repository paths, the offline CIFAR-10 archive, fake data."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO, SHARED_CIFAR, make_image_tar


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
