"""Training add-ons (`trainer.add_ons`): one registered here, outside ftcli, wraps the task's step
in a real `ftcli train`; an unknown name is a config error before anything runs."""

from __future__ import annotations

import json
from dataclasses import dataclass

from safetensors.torch import load_file

from ftcli.cli.main import main
from ftcli.engine.step import ADD_ONS, TrainingStep, WrappedStep
from ftcli.errors import EXIT_CONFIG
from tests.integration.conftest import SMOKE


@dataclass
class PenaltyConfig:
    penalty: float = 1.0


class Penalised(WrappedStep):
    """The task's loss plus a constant: the logged loss rises by it, the gradient stays the same."""

    calls = 0

    def __init__(self, inner: TrainingStep, penalty: float) -> None:
        super().__init__(inner)
        self.penalty = penalty

    def loss(self, model, batch):
        Penalised.calls += 1
        return self.inner.loss(model, batch) + self.penalty


class Penalty:
    def wrap(self, step: TrainingStep, cfg: PenaltyConfig) -> TrainingStep:
        return Penalised(step, cfg.penalty)


if "test_penalty" not in ADD_ONS:
    ADD_ONS.register("test_penalty", PenaltyConfig)(Penalty())


def logged_losses(run):
    return [r["loss"] for r in map(json.loads, (run / "train_log.jsonl").read_text().splitlines()) if "loss" in r]


def test_a_registered_add_on_wraps_the_training_step(tmp_path):
    plain, penalised = tmp_path / "plain", tmp_path / "penalised"
    assert main(["train", *SMOKE, f"hydra.run.dir={plain}"]) == 0
    Penalised.calls = 0
    assert main(["train", *SMOKE, "trainer.add_ons=[test_penalty]", f"hydra.run.dir={penalised}"]) == 0
    assert Penalised.calls == 4  # debug=smoke: 4 steps of one batch
    assert [round(b - a, 4) for a, b in zip(logged_losses(plain), logged_losses(penalised))] == [1.0] * 4
    a, b = load_file(str(plain / "model" / "model.safetensors")), load_file(str(penalised / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(b[k].allclose(a[k]) for k in a)  # a constant changes no gradient
    assert "- test_penalty" in (penalised / "config.yaml").read_text()


def test_an_unknown_add_on_is_a_config_error_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the error panel on one line
    run = tmp_path / "run"
    assert main(["train", *SMOKE, "trainer.add_ons=[test_penalti]", f"hydra.run.dir={run}"]) == EXIT_CONFIG
    message = " ".join(capsys.readouterr().err.split())
    assert "trainer.add_ons: unknown training add-on 'test_penalti' (did you mean 'test_penalty'?)" in message
    assert not run.exists()
