"""Shared fixtures of the unit tests: the configs folder and registered config schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="session")
def config_dir() -> Path:
    """The repository's `configs/` folder (absolute, as Hydra requires)."""
    assert (CONFIG_DIR / "train.yaml").is_file(), CONFIG_DIR
    return CONFIG_DIR


@pytest.fixture(scope="session")
def registered_configs() -> None:
    """Register ftcli's schemas with Hydra's ConfigStore, as the CLI does before composing."""
    from ftcli.cli.registered import register_configs

    register_configs()
