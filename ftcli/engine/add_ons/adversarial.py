"""Adversarial training on the input embeddings (`trainer.adversarial`): FGM, PGD and FreeLB.

Each is a training step that runs a micro-batch through the model several times, each time with
a perturbation δ added to the output of the model's input-embedding lookup, and calls the
`backward` the loop gives it once per pass (the loop weights it for accumulation):

- **FGM** (Miyato et al., 2017): a clean pass, whose gradient g with respect to δ gives
  δ = ε·g/‖g‖ (l2) or ε·sign(g) (linf); then one pass at δ. Both passes' gradients train.
- **PGD** (Madry et al., 2018): the clean pass, then `steps` passes, each after an ascent step of
  size α projected back into the ε-ball. The clean pass's and the last pass's gradients train.
- **FreeLB** (Zhu et al., 2020): δ starts at random inside the ball; `steps` passes, each followed
  by an ascent step. Every pass trains with 1/`steps` of the weight: the gradient is their mean.

Sizes are per example over its real tokens, and δ enters at the input-embedding lookup of each
forward pass (`ftcli.engine.add_ons.perturbation`). It exists only while a step's passes run: the
hooks come off before the optimiser steps, so the weights, evaluations and later forward passes
never see it. Since δ is added to the embeddings, every trainable parameter that the loss depends
on, whatever the method, trains on the perturbed passes' gradient too.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

import torch
from torch import nn

from ftcli.config.schema import AdversarialConfig, AdversarialMethod
from ftcli.engine.add_ons.perturbation import (
    Examples,
    Pass,
    Perturbation,
    Start,
    ascend,
    fixed,
    no_perturbation,
    project,
    random_start,
)
from ftcli.engine.add_ons.tally import Tally
from ftcli.engine.step import Backward, Batch, TrainingStep, WrappedStep

if TYPE_CHECKING:
    from accelerate import Accelerator


class AdversarialStep(WrappedStep):
    """What FGM, PGD and FreeLB share: the hooks, one pass, and the adversarial loss they log.

    The loop logs the loss `backward` returns; each method says which that is. `adversarial_loss`
    in the log is the mean over units of the last adversarial pass's loss (FreeLB: of all of them).
    """

    def __init__(self, inner: TrainingStep, cfg: AdversarialConfig) -> None:
        super().__init__(inner)
        self.cfg = cfg
        self.tally = Tally()
        self.perturbation: Perturbation | None = None
        self.accelerator: Accelerator | None = None
        self.trainable: list[nn.Parameter] = []

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        super().prepare(accelerator, model)
        self.accelerator, self.perturbation = accelerator, Perturbation(model)
        self.trainable = [p for p in model.parameters() if p.requires_grad]

    def backward(self, model: nn.Module, batch: Batch, backward: Backward) -> torch.Tensor:
        if self.perturbation is None:
            raise RuntimeError(f"{type(self).__name__}.prepare was not called before the first batch")
        with self.perturbation.attached():
            loss, adversarial = self.passes(model, batch, backward)
        self.tally.add(adversarial, self.units(batch))
        return loss

    def passes(self, model: nn.Module, batch: Batch, backward: Backward) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the method's passes; the loss to log and the adversarial loss."""
        raise NotImplementedError

    def logged(self) -> dict[str, float]:
        mean = self.tally.read()
        return {**self.inner.logged(), **({"adversarial_loss": mean} if mean is not None else {})}

    def one_pass(self, model: nn.Module, batch: Batch, backward: Backward, start: Start, last: bool) -> Pass:
        """The inner step's passes at δ = `start(...)`. Under `accelerate launch` gradients are
        synchronised once, in the micro-batch's last pass, as the loop does across micro-batches."""
        assert self.perturbation is not None and self.accelerator is not None  # `backward` checked `prepare` ran
        synced = nullcontext() if last else self.accelerator.no_sync(model)
        with synced:
            return self.perturbation.run(batch, start, lambda: self.inner.backward(model, batch, backward))

    def step_from(self, previous: Pass) -> torch.Tensor:
        """The next δ: an ascent step of size α from `previous`, projected into the ε-ball."""
        cfg = self.cfg
        moved = ascend(previous.delta, previous.grad, previous.examples, cfg.alpha, cfg.norm)
        return project(moved, previous.examples, cfg.epsilon, cfg.norm)


class FastGradient(AdversarialStep):
    """FGM: the clean pass, then one at ε along its gradient; logs the clean loss."""

    def passes(self, model: nn.Module, batch: Batch, backward: Backward) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.one_pass(model, batch, backward, no_perturbation, last=False)
        delta = ascend(clean.delta, clean.grad, clean.examples, self.cfg.epsilon, self.cfg.norm)
        attacked = self.one_pass(model, batch, backward, fixed(delta), last=True)
        return clean.loss, attacked.loss


class ProjectedGradient(AdversarialStep):
    """PGD: the clean pass, then `steps` ascent steps each followed by a pass; logs the clean loss.

    Only the clean and the last pass train: the gradients as they stood after the clean pass are
    put back before the last one, which adds its own (a copy of the trainable gradients is kept
    meanwhile).
    """

    def passes(self, model: nn.Module, batch: Batch, backward: Backward) -> tuple[torch.Tensor, torch.Tensor]:
        current = self.one_pass(model, batch, backward, no_perturbation, last=False)
        clean_loss, steps = current.loss, self.cfg.steps
        kept = [p.grad.clone() if p.grad is not None else None for p in self.trainable] if steps > 1 else None
        for step in range(steps):
            last = step == steps - 1
            if last and kept is not None:
                for param, grad in zip(self.trainable, kept):
                    param.grad = grad
            current = self.one_pass(model, batch, backward, fixed(self.step_from(current)), last=last)
        return clean_loss, current.loss


class FreeLargeBatch(AdversarialStep):
    """FreeLB: `steps` passes from a random start, each weighted 1/steps; logs their mean loss (there
    is no clean pass)."""

    def passes(self, model: nn.Module, batch: Batch, backward: Backward) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, losses = self.cfg, []

        def start(output: torch.Tensor, examples: Examples) -> torch.Tensor:
            return random_start(output, examples, cfg.epsilon, cfg.norm)

        def share(loss: torch.Tensor) -> None:
            backward(loss / cfg.steps)

        begin: Start = start
        for step in range(cfg.steps):
            last = step == cfg.steps - 1
            current = self.one_pass(model, batch, share, begin, last=last)
            losses.append(current.loss)
            if not last:
                begin = fixed(self.step_from(current))
        mean = torch.stack(losses).mean()
        return mean, mean


ADVERSARIAL_STEPS: dict[AdversarialMethod, type[AdversarialStep]] = {
    AdversarialMethod.fgm: FastGradient,
    AdversarialMethod.pgd: ProjectedGradient,
    AdversarialMethod.freelb: FreeLargeBatch,
}


def with_adversarial(step: TrainingStep, cfg: AdversarialConfig) -> TrainingStep:
    """`step` run adversarially as `cfg` says; `step` itself when `cfg.method` is none."""
    if cfg.method is AdversarialMethod.none:
        return step
    return ADVERSARIAL_STEPS[cfg.method](step, cfg)
