"""The training step and learning-rate factors of a run, from the task's step and the trainer settings.

The step is built inside out, in this order, whatever order the settings are given in:

1. the task's own step (`Task.training_step`);
2. the add-ons that rework the model's own loss from its class scores: R-Drop (`trainer.rdrop`),
   whose two cross-entropies take `trainer.label_smoothing`, or label smoothing alone; a task step
   that distils a teacher (`ftcli.engine.distill.DistillStep`, `trainer.distill`) smooths its own
   cross-entropy itself, and is not combined with R-Drop;
3. the registered add-ons of `trainer.add_ons`, the first one innermost (`ftcli.engine.step.with_add_ons`);
4. adversarial training (`trainer.adversarial`) outermost: each of its passes runs all of the
   passes of what it wraps, with the perturbation in place.

Loss-changing wrappers go inside and pass-running ones outside, because a wrapper that changes
`loss` is only heard by the passes of a wrapper around it (`ftcli.engine.step.WrappedStep`).

The learning-rate factor of a parameter is the method's own (LoRA+) times the layer decay's
(`trainer.layer_decay`). `trainer.ema` needs no wrapper: the loop keeps the average itself.

Every add-on that cannot apply to this task or model is refused at once, all of them in one error.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ftcli.config.schema import AdversarialMethod, TrainerConfig
from ftcli.engine.add_ons.adversarial import with_adversarial
from ftcli.engine.add_ons.label_smoothing import LabelSmoothing
from ftcli.engine.add_ons.layer_decay import LAYER, layer_factors, times
from ftcli.engine.add_ons.rdrop import RDrop
from ftcli.engine.distill import DistillStep
from ftcli.engine.step import ModelLoss, Objective, TrainingStep, with_add_ons
from ftcli.errors import ConfigError

LrScale = Callable[[str], float]


def training_setup(
    step: TrainingStep, trainer: TrainerConfig, task: str, model: nn.Module, lr_scale: LrScale | None,
) -> tuple[TrainingStep, LrScale | None]:
    """The step the loop trains `model` with, and the learning-rate factor by parameter name.

    `step` is task `task`'s own step, `lr_scale` the method's factor (None: one rate for all).

    Raises:
        ConfigError: listing every add-on the settings ask for that this task or model cannot take.
    """
    names = [name for name, _ in model.named_parameters()]
    decay = layer_factors(names, trainer.layer_decay) if trainer.layer_decay is not None else None
    problems = step_problems(step, trainer, task)
    if trainer.layer_decay is not None and decay is None:
        problems.append(
            f"trainer.layer_decay={trainer.layer_decay}: no transformer layers found among the parameter names of "
            f"this {type(model).__name__} (looked for a `<list>.<index>.` part matching {LAYER.pattern}), so no "
            "layer can be given its rate"
        )
    if problems:
        raise ConfigError(problems, hint="turn these add-ons off for this run, or pick a task and model they apply to")
    trained = with_adversarial(with_add_ons(reworked(step, trainer), trainer.add_ons), trainer.adversarial)
    return trained, times(lr_scale, decay)


def reworked(step: TrainingStep, trainer: TrainerConfig) -> TrainingStep:
    """The task's step with R-Drop or label smoothing when asked for (checked by `step_problems`)."""
    if isinstance(step, DistillStep):
        step.smoothing = trainer.label_smoothing
        return step
    if not isinstance(step, ModelLoss):
        return step
    if trainer.rdrop:
        return RDrop(step, trainer.rdrop, trainer.label_smoothing)
    if trainer.label_smoothing:
        return LabelSmoothing(step, trainer.label_smoothing)
    return step


def step_problems(step: TrainingStep, trainer: TrainerConfig, task: str) -> list[str]:
    """The add-ons asked for that the task's step cannot take, each with the reason."""
    asked = {name: value for name, value in (("rdrop", trainer.rdrop), ("label_smoothing", trainer.label_smoothing))
             if value}
    adversarial = trainer.adversarial.method
    if isinstance(step, DistillStep):
        if trainer.rdrop:
            return [f"trainer.rdrop={trainer.rdrop} with trainer.distill: each adds its own divergence to the "
                    "cross-entropy (between two dropout passes; to the teacher), and ftcli does not combine the two"]
        return step_problems(step.scored, trainer, task)
    if not isinstance(step, ModelLoss):
        problems = [f"trainer.{name}={value} reworks the model's own cross-entropy over classes; task={task} trains "
                    f"with a loss of its own ({type(step).__name__}), so there is none to rework"
                    for name, value in asked.items()]
        if adversarial is not AdversarialMethod.none:
            problems.append(
                f"trainer.adversarial.method={adversarial.value} perturbs the input embeddings of one forward pass "
                f"per example; task={task} trains with a loss of its own ({type(step).__name__}) that compares "
                "paired or sampled sequences, where one perturbation of the embeddings has no single meaning"
            )
        return problems
    if step.objective is Objective.other:
        return [f"trainer.{name}={value} needs a distribution over classes; task={task} with these settings "
                "trains a head that predicts no single class (binary cross-entropy of a multi-label head, or "
                "squared error of a regression head)"
                for name, value in asked.items()]
    return []
