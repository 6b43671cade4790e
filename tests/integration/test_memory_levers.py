"""The memory levers through the CLI on a tiny Llama: a chunked loss trains the same weights as the plain
one, and a PiSSA run evaluates and exports on the original base model."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import train

FAST = ["model=tiny_llama", "task=instruction", "task.max_length=64", "task.generate_in_eval=false", "method=lora"]


def validation(run):
    return json.loads((run / "metrics.json").read_text())["validation"]


@pytest.mark.slow
def test_a_chunked_pissa_run_trains_as_the_plain_one_and_reloads_on_the_original_base(tmp_path):
    plain = train(tmp_path / "plain", *FAST, "method.init=pissa", "task.packing=true")
    chunked = train(tmp_path / "chunked", *FAST, "method.init=pissa", "task.packing=true",
                    "trainer.chunked_cross_entropy=true", "trainer.cross_entropy_chunk_tokens=16")
    assert validation(chunked)["loss"] == pytest.approx(validation(plain)["loss"], rel=1e-5)
    # the adapter was saved as a plain LoRA of twice the rank, built on the original tiny Llama again
    assert json.loads((chunked / "adapter" / "adapter_config.json").read_text())["r"] == 16
    assert main(["eval", f"run_dir={chunked}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["validation"]["loss"] == pytest.approx(
        validation(chunked)["loss"], rel=1e-6)
    merged = tmp_path / "merged"
    assert main(["export", f"run_dir={chunked}", "merge=true", f"output={merged}", f"hydra.run.dir={tmp_path / 'x'}"]) == 0
    assert (merged / "model.safetensors").is_file()
