"""What one training step computes: an object the loop asks for the loss of each micro-batch.

The loop owns batching, accumulation, the optimiser and checkpoints; it never computes a loss
itself. A task hands the loop a `TrainingStep` (by default `ModelLoss`, the model's own loss),
and registered add-ons (`ADD_ONS`, chosen with `trainer.add_ons`) wrap it. A new loss or a new
add-on is therefore a new class in the task's or add-on's own module, and no change here or in
the loop.

torch is imported inside functions: the config check looks add-on names up in `ADD_ONS`, and
composing a config stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from ftcli.registry import Registry

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn

Batch = Mapping[str, "torch.Tensor"]
Collate = Callable[[list[dict[str, Any]]], Batch]
Backward = Callable[["torch.Tensor"], None]
IGNORE_INDEX = -100  # the label id PyTorch's cross-entropy skips: prompt tokens, padding, subword tails


class TrainingStep(Protocol):
    """The loss of one micro-batch, and the number of units that loss is a mean over.

    Before any forward pass of an optimiser step, the loop asks `units` of each of its
    micro-batches and hands `backward` a function that scales a micro-batch's mean loss by its
    share of the step's units. So the gradient of one optimiser step is the mean over all of its
    units (supervised tokens for token-level losses, rows or pairs otherwise) however the step is
    cut into micro-batches by `trainer.grad_accum_steps` or, summed across processes, into ranks.

    The three kinds of extension this is shaped for:

    - **A loss that needs a second, frozen model** (DPO's reference policy, a distillation
      teacher): the step holds that model, `prepare` places it on the accelerator's device once
      before the first batch, and `loss` runs it under `torch.no_grad()` beside the trained model.
    - **Extra forward and backward passes before the optimiser step** (an adversarial
      perturbation of the embeddings, R-Drop's second dropout pass): a wrapping step overrides
      `backward`, calls the inner step's `loss` as often as it needs and `backward` once per
      pass; the optimiser steps once, after all of them.
    - **Extra inputs from the collator** (a teacher's cached logits, a second view of the text):
      a wrapping step overrides `collator` to add its keys to each batch, and pops them in `loss`
      before the model's forward pass, so the model never sees an input it does not take.
    """

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        """Ready the step for `model`, the trained model before `accelerate` wraps it: place what the
        step holds besides it (frozen models, buffers) on the accelerator's device, once, before the
        first batch. A step that generates keeps `model` to call `generate` on."""

    def collator(self, collate: Collate) -> Collate:
        """The collator the loop batches training features with: `collate`, or one that adds inputs."""

    def units(self, batch: Batch) -> torch.Tensor:
        """How many units `loss` averages over in this batch (an integer tensor, no forward pass)."""

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The differentiable mean loss of `batch` over its `units`."""

    def backward(self, model: nn.Module, batch: Batch, backward: Backward) -> torch.Tensor:
        """Run the step's passes on `batch`, calling `backward` on each loss; the detached loss to log."""

    def logged(self) -> dict[str, float]:
        """Figures the step measured since the last log record (mean reward, KL, margins), added to
        the next one; the step starts counting again."""


class LossUnit(str, Enum):
    """What a model's own loss is a mean over, so that micro-batches can be weighted by it."""

    rows = "rows"  # sequence classification, regression: one loss per example
    tokens = "tokens"  # token classification, seq2seq: the labels that are not IGNORE_INDEX
    next_tokens = "next_tokens"  # causal LMs: labels shifted by one, the first one of each row predicts nothing


class Step:
    """Defaults every step shares: nothing to prepare, the collator as given, one forward and backward."""

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        return None

    def collator(self, collate: Collate) -> Collate:
        return collate

    def units(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, model: nn.Module, batch: Batch, backward: Backward) -> torch.Tensor:
        loss = self.loss(model, batch)
        backward(loss)
        return loss.detach()

    def logged(self) -> dict[str, float]:
        return {}


@dataclass
class ModelLoss(Step):
    """The model's own loss (`forward(**batch).loss`), a mean over `unit`."""

    unit: LossUnit = LossUnit.rows

    def units(self, batch: Batch) -> torch.Tensor:
        import torch

        labels = batch.get("labels")
        if self.unit is LossUnit.rows or labels is None:
            return torch.tensor(rows(batch), device=batch["input_ids"].device)
        if self.unit is LossUnit.next_tokens:
            labels = labels[..., 1:]
        return (labels != IGNORE_INDEX).sum()

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(**batch).loss


def rows(batch: Batch) -> int:
    """Examples in a batch; a padding-free batch is one row of several, each starting at position 0."""
    if "position_ids" in batch and "attention_mask" not in batch:
        return int((batch["position_ids"] == 0).sum())
    return len(batch["input_ids"])


class WrappedStep(Step):
    """A step that changes part of another: everything it does not override goes to `inner`.

    `backward` is `Step`'s one forward and backward pass with `self.loss`, so a wrapper that
    changes only the loss keeps working whatever it wraps; a wrapper that overrides `backward`
    decides which passes run, and comes after (outside) the add-ons that change the loss.
    """

    def __init__(self, inner: TrainingStep) -> None:
        self.inner = inner

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        self.inner.prepare(accelerator, model)

    def collator(self, collate: Collate) -> Collate:
        return self.inner.collator(collate)

    def units(self, batch: Batch) -> torch.Tensor:
        return self.inner.units(batch)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.inner.loss(model, batch)

    def logged(self) -> dict[str, float]:
        return self.inner.logged()


class StepAddOn(Protocol):
    """A registered add-on (`trainer.add_ons=[name]`): it wraps the task's step in one of its own."""

    def wrap(self, step: TrainingStep, cfg: Any) -> TrainingStep:
        """`step` wrapped; `cfg` is an instance of the config class the add-on registered with."""


ADD_ONS: Registry[StepAddOn] = Registry("training add-on")


def with_add_ons(step: TrainingStep, names: Sequence[str]) -> TrainingStep:
    """`step` wrapped in each add-on `names` lists (`trainer.add_ons`), the first one innermost.

    An add-on is configured by its registered config class, built with its defaults.

    Raises:
        ConfigError: for a name no add-on registered, with the closest registered one.
    """
    for name in names:
        entry = ADD_ONS.get(name)
        step = entry.impl.wrap(step, entry.config_cls())
    return step
