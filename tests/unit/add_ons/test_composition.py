"""The step of a run is built in one fixed order: the loss-reworking add-ons inside, the registered
ones of `trainer.add_ons` around them, adversarial training outside, each of whose passes runs all
of the passes inside it; with nothing asked for, the task's own step and the method's rates."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoModelForSequenceClassification

from ftcli.config.schema import AdversarialConfig, AdversarialMethod, TrainerConfig
from ftcli.engine.add_ons.adversarial import FastGradient
from ftcli.engine.add_ons.compose import training_setup
from ftcli.engine.add_ons.label_smoothing import LabelSmoothing
from ftcli.engine.add_ons.rdrop import RDrop
from ftcli.engine.step import ADD_ONS, ModelLoss, WrappedStep
from tests.unit.add_ons.test_adversarial import ONE_PROCESS, padded_batch
from tests.unit.test_grad_accumulation import tiny


@dataclass
class NoSettings:
    pass


class Counted(WrappedStep):
    calls = 0

    def loss(self, model, batch):
        Counted.calls += 1
        return self.inner.loss(model, batch)


class Counting:
    def wrap(self, step, cfg):
        return Counted(step)


if "test_counting" not in ADD_ONS:
    ADD_ONS.register("test_counting", NoSettings)(Counting())


def test_nothing_asked_for_leaves_the_tasks_step_and_the_methods_rates():
    task_step, model = ModelLoss(), torch.nn.Linear(2, 2)

    def method_rates(name):
        return 2.0

    assert training_setup(task_step, TrainerConfig(), "sentiment", model, method_rates) == (task_step, method_rates)
    step, _ = training_setup(task_step, TrainerConfig(label_smoothing=0.1), "sentiment", model, None)
    assert type(step) is LabelSmoothing and step.epsilon == 0.1 and step.inner is task_step


def test_loss_reworking_inside_registered_add_ons_inside_adversarial_passes():
    model = tiny(AutoModelForSequenceClassification, "bert", num_labels=2)
    trainer = TrainerConfig(adversarial=AdversarialConfig(method=AdversarialMethod.fgm), rdrop=1.0,
                            label_smoothing=0.1, add_ons=["test_counting"])
    step, _ = training_setup(ModelLoss(), trainer, "sentiment", model, None)
    assert type(step) is FastGradient and type(step.inner) is Counted
    rdrop = step.inner.inner
    assert type(rdrop) is RDrop and rdrop.smoothing == 0.1 and type(rdrop.inner) is ModelLoss
    forwards = []
    model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    Counted.calls = 0
    step.prepare(ONE_PROCESS, model)
    step.backward(model, padded_batch(), lambda loss: loss.backward())
    assert Counted.calls == 2 and len(forwards) == 4  # two adversarial passes, each of R-Drop's two forward passes
    assert set(step.logged()) == {"adversarial_loss", "rdrop_kl"}


def test_a_distilled_step_smooths_its_own_cross_entropy_runs_adversarially_and_refuses_rdrop():
    import pytest

    from ftcli.engine.distill import DistillStep
    from ftcli.errors import ConfigError

    model = tiny(AutoModelForSequenceClassification, "bert", num_labels=2)
    distilled = DistillStep(ModelLoss(), temperature=2.0, alpha=0.5)
    trainer = TrainerConfig(adversarial=AdversarialConfig(method=AdversarialMethod.fgm), label_smoothing=0.1)
    step, _ = training_setup(distilled, trainer, "sentiment", model, None)
    assert type(step) is FastGradient and step.inner is distilled and distilled.smoothing == 0.1
    with pytest.raises(ConfigError, match="trainer.rdrop=1.0 with trainer.distill"):
        training_setup(DistillStep(ModelLoss(), 2.0, 0.5), TrainerConfig(rdrop=1.0), "sentiment", model, None)
