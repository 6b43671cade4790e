"""A task that brings its own loss: registered here, outside ftcli, with a training step that is not
the model's own loss, and trained, evaluated and used for predictions by the unchanged commands."""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from hydra.core.config_store import ConfigStore
from torch import nn
from torch.nn import functional as F

from ftcli.cli.main import main
from ftcli.data.splits import sample_dir
from ftcli.engine.frozen import NO_FROZEN_MODELS
from ftcli.engine.step import Batch, Step
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig, ClassificationTask, SequenceClassification
from tests.integration.conftest import SMOKE


class HingeLoss(Step):
    """Multi-class hinge loss on the head's logits: a loss the model does not compute itself."""

    returned: list[float] = []

    def units(self, batch: Batch) -> torch.Tensor:
        return torch.tensor(len(batch["labels"]))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        loss = F.multi_margin_loss(model(**inputs).logits, batch["labels"])
        HingeLoss.returned.append(loss.item())
        return loss


@dataclass
class HingeConfig(ClassificationConfig):
    name: str = "test_hinge"


@dataclass
class HingeTask(ClassificationTask):
    def training_step(self) -> Step:
        return HingeLoss()


class HingeClassification(SequenceClassification):
    def bind(self, cfg, data, labels, tokenizer, frozen=NO_FROZEN_MODELS) -> HingeTask:
        return HingeTask(self, cfg, data, labels, tokenizer, frozen=frozen)


if "test_hinge" not in TASKS:
    TASKS.register("test_hinge", HingeConfig)(HingeClassification())
    ConfigStore.instance().store(group="task", name="test_hinge", node=HingeConfig)


def test_a_task_with_its_own_loss_trains_evaluates_and_predicts(tmp_path):
    sample = sample_dir("sentiment")
    data = [f"data.train_file={sample / 'train.jsonl'}", f"data.validation_file={sample / 'validation.jsonl'}"]
    run = tmp_path / "run"
    HingeLoss.returned = []
    assert main(["train", *SMOKE, "task=test_hinge", *data, f"hydra.run.dir={run}"]) == 0
    logged = [r["loss"] for r in map(json.loads, (run / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(HingeLoss.returned) == 4  # debug=smoke: 4 steps of one batch
    assert [round(v, 5) for v in logged] == [round(v, 5) for v in HingeLoss.returned]
    assert "name: test_hinge" in (run / "config.yaml").read_text()

    evaluated, predicted = tmp_path / "eval", tmp_path / "predict"
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={evaluated}"]) == 0
    assert "accuracy" in json.loads((evaluated / "metrics.json").read_text())["validation"]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"text": "a fine film"}\n')
    assert main(["predict", f"run_dir={run}", f"input={inputs}", f"hydra.run.dir={predicted}"]) == 0
    (row,) = map(json.loads, (predicted / "predictions.jsonl").read_text().splitlines())
    assert row["label"] in ("negative", "positive")
