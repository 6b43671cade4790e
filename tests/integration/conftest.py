"""Runs of the real CLI on the tiny BERT, shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftcli.cli import main

SMOKE = ["model=tiny_bert", "debug=smoke", "trainer.eval_batch_size=16"]
PROMPT_METHODS = {"prompt_tuning", "p_tuning", "prefix_tuning"}
NATIVE_METHODS = {"adapter", "lora_adapter", "lora_prefix"}  # saved in ftcli's adapter format
ADAPTER_METHODS = {"lora", "ia3", "ln_tuning"} | PROMPT_METHODS | NATIVE_METHODS
METHODS = [
    "full", "freeze", "bitfit", "lora", "ia3", "ln_tuning", "prompt_tuning", "p_tuning", "prefix_tuning",
    "adapter", "lora_adapter", "lora_prefix",
]


def train(run_dir: Path, *overrides: str) -> Path:
    code = main(["train", *SMOKE, f"hydra.run.dir={run_dir}", *overrides])
    assert code == 0, f"train exited {code}"
    return run_dir


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """One finished tiny run per method on the bundled sentiment sample."""
    root = tmp_path_factory.mktemp("runs")
    return {method: train(root / method, f"method={method}") for method in METHODS}
