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


class Objective(str, Enum):
    """What a model's own loss is, so that add-ons which rework it (label smoothing, R-Drop,
    distillation) know whether there is a distribution over classes to rework."""

    classes = "classes"  # cross-entropy of `logits` against `labels`, one prediction per unit
    spans = "spans"  # extractive QA: the mean of the start and the end positions' cross-entropy
    other = "other"  # binary cross-entropy, squared error, ...: no single class to predict


@dataclass
class ClassScores:
    """One head's scores over its classes, one row per prediction, beside the class each should pick.

    `logits` is (n, classes) and `targets` (n,), with IGNORE_INDEX where nothing is to be predicted
    (padding, prompt tokens, subword tails), in the order of the batch: row by row, then position
    by position. The cross-entropy of the kept rows, averaged, is the model's own loss.
    """

    logits: torch.Tensor
    targets: torch.Tensor

    def kept(self) -> torch.Tensor:
        """Which rows hold a prediction (a boolean mask)."""
        return self.targets != IGNORE_INDEX


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
    """The model's own loss (`forward(**batch).loss`), a mean over `unit`; `objective` says what it is."""

    unit: LossUnit = LossUnit.rows
    objective: Objective = Objective.classes

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

    def scores(self, model: nn.Module, batch: Batch) -> tuple[Any, list[ClassScores]]:
        """One forward pass: the model's output and its heads' class scores (one head; QA: start, end).

        The labels stay in the batch, since a seq2seq model builds its decoder inputs from them.

        Raises:
            ValueError: for an `objective` with no classes to score (`Objective.other`).
        """
        out = model(**batch)
        if self.objective is Objective.other:
            raise ValueError(f"a {self.unit.value} loss with objective {self.objective.value} has no class scores")
        if self.objective is Objective.spans:
            return out, [_span_scores(out.start_logits, batch["start_positions"]),
                         _span_scores(out.end_logits, batch["end_positions"])]
        logits, labels = out.logits, batch["labels"]
        if self.unit is LossUnit.next_tokens:
            logits, labels = logits[..., :-1, :], labels[..., 1:]
        return out, [ClassScores(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))]


def _span_scores(logits: torch.Tensor, positions: torch.Tensor) -> ClassScores:
    """Start or end scores over a window's tokens; a position past the window predicts nothing, as
    in the QA heads of `transformers`, which clamp it to the window's length and ignore that."""
    targets = positions.reshape(-1).clamp(min=0)
    targets[targets >= logits.shape[-1]] = IGNORE_INDEX
    return ClassScores(logits, targets)


def cross_entropy(scores: ClassScores, smoothing: float = 0.0) -> torch.Tensor:
    """The mean cross-entropy over the rows of `scores` that hold a prediction (`smoothing`: label
    smoothing's epsilon, spread over all classes as `torch` does)."""
    import torch.nn.functional as F

    return F.cross_entropy(scores.logits.float(), scores.targets, ignore_index=IGNORE_INDEX,
                           label_smoothing=smoothing)


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
