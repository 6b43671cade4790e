"""Options that trade speed for memory must not change what is learnt."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.integration.conftest import train


def weights(run):
    folder = run / ("model" if (run / "model").is_dir() else "adapter")
    [file] = [f for f in folder.iterdir() if f.suffix == ".safetensors"]
    return load_file(str(file))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing_learns_the_same_weights(tmp_path, method):
    plain = train(tmp_path / "plain", f"method={method}")
    recomputed = train(tmp_path / "recomputed", f"method={method}", "trainer.gradient_checkpointing=true")
    scores = [json.loads((run / "metrics.json").read_text())["validation"] for run in (plain, recomputed)]
    assert scores[0]["loss"] == pytest.approx(scores[1]["loss"], abs=1e-6)
    a, b = weights(plain), weights(recomputed)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)
