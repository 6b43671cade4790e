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

Norms are per row over the tokens that are not padding (`attention_mask`), so a row's
perturbation depends neither on what else its batch holds nor on how far it is padded. The
perturbation exists only while a step's passes run: the hooks come off before the optimiser
steps, so the weights, evaluations and later forward passes never see it.

δ enters at the first lookup in the input embeddings of each forward pass of the model (hooks on
every embedding module holding the input-embedding weight): for an encoder-decoder that is the
encoder's input, not the decoder's (the targets, shifted); for PEFT's prompt learning the real
tokens, not the virtual ones. A pass that runs the model twice (R-Drop inside) perturbs both
forward passes with the same δ. Since δ is added to the embeddings, every trainable parameter
that the loss depends on, whatever the method, trains on the perturbed passes' gradient too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from ftcli.config.schema import AdversarialConfig, AdversarialMethod, PerturbationNorm
from ftcli.engine.add_ons.tally import Tally
from ftcli.engine.step import Backward, Batch, TrainingStep, WrappedStep
from ftcli.errors import ConfigError

if TYPE_CHECKING:
    from accelerate import Accelerator
    from transformers import PreTrainedModel

Start = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""δ of a pass, from the embedding lookup's output (detached) and the mask of the positions to perturb."""


def positions(batch: Batch, output: torch.Tensor) -> torch.Tensor:
    """Which positions of an embedding output (batch, tokens, hidden) are real tokens, as a (batch,
    tokens, 1) float mask; a padding-free batch (one row of several examples) has no padding."""
    mask = batch.get("attention_mask")
    if mask is None or mask.shape != output.shape[:-1]:
        return output.new_ones((*output.shape[:-1], 1), dtype=torch.float32)
    return mask[..., None].to(torch.float32)


def row_norms(values: torch.Tensor) -> torch.Tensor:
    """Each row's l2 norm over its tokens and hidden units together, shaped to broadcast (batch, 1, 1)."""
    return values.flatten(1).norm(dim=1).view(-1, *[1] * (values.dim() - 1))


def ascend(delta: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, size: float,
           norm: PerturbationNorm) -> torch.Tensor:
    """`delta` moved by `size` (in `norm`, per row) along the masked gradient: the steepest ascent of
    that size. A row whose gradient is zero stays where it is."""
    grad = grad * mask
    if norm is PerturbationNorm.linf:
        direction = grad.sign()
    else:
        direction = grad / row_norms(grad).clamp(min=torch.finfo(torch.float32).tiny)
    return delta + size * direction


def project(delta: torch.Tensor, epsilon: float, norm: PerturbationNorm) -> torch.Tensor:
    """The nearest point to `delta` inside the ε-ball of `norm`: rows of l2 norm above ε scaled down
    to ε; linf: each value clamped to [-ε, ε]."""
    if norm is PerturbationNorm.linf:
        return delta.clamp(-epsilon, epsilon)
    return delta * (epsilon / row_norms(delta)).clamp(max=1.0)


def random_start(output: torch.Tensor, mask: torch.Tensor, epsilon: float, norm: PerturbationNorm) -> torch.Tensor:
    """FreeLB's start: values drawn uniformly from [-1, 1] on the real tokens, scaled into the ε-ball
    (l2: by ε/√d for the row's d values, whose norm is then at most ε; linf: by ε)."""
    noise = torch.empty(output.shape, dtype=torch.float32, device=output.device).uniform_(-1.0, 1.0) * mask
    if norm is PerturbationNorm.linf:
        return noise * epsilon
    values = mask.flatten(1).sum(dim=1).view(-1, *[1] * (output.dim() - 1)) * output.shape[-1]
    return noise * epsilon / values.sqrt().clamp(min=1.0)


def no_perturbation(output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.zeros(output.shape, dtype=torch.float32, device=output.device)


def fixed(delta: torch.Tensor) -> Start:
    return lambda output, mask: delta


@dataclass
class Pass:
    """One pass of a micro-batch: its loss, the δ it ran at, the gradient with respect to δ, and the mask."""

    loss: torch.Tensor
    delta: torch.Tensor
    grad: torch.Tensor
    mask: torch.Tensor


class Perturbation:
    """Adds δ to the first input-embedding lookup of each forward pass of `model`, while attached."""

    def __init__(self, model: nn.Module) -> None:
        weight = cast("PreTrainedModel", model).get_input_embeddings().weight
        self.model = model
        # an encoder-decoder's encoder and decoder may each hold their own module over the one weight
        self.lookups = [m for m in model.modules() if isinstance(m, nn.Embedding) and m.weight is weight]
        self.batch: Batch = {}
        self.start: Start = no_perturbation
        self.delta: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        self.armed = False

    @contextmanager
    def attached(self) -> Iterator[None]:
        """The hooks in place: only while one micro-batch's passes run."""
        handles = [self.model.register_forward_pre_hook(self._arm)]
        handles += [module.register_forward_hook(self._add) for module in self.lookups]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            self.delta = self.mask = None
            self.batch = {}

    def run(self, batch: Batch, start: Start, passes: Callable[[], torch.Tensor]) -> Pass:
        """Run `passes` (the inner step's forward and backward passes of `batch`) at δ = `start(...)`.

        Raises:
            ConfigError: when the model never looked up its input embeddings, so nothing was perturbed.
        """
        self.batch, self.start, self.delta = batch, start, None
        loss = passes()
        if self.delta is None or self.mask is None:
            raise ConfigError(
                "trainer.adversarial: the model's forward pass never looked up its input embeddings "
                f"({type(self.model).__name__}.get_input_embeddings()), so there is nothing to perturb",
                hint="set trainer.adversarial.method=none for this model",
            )
        grad = self.delta.grad if self.delta.grad is not None else torch.zeros_like(self.delta)
        return Pass(loss, self.delta.detach(), grad, self.mask)

    def _arm(self, module: nn.Module, args: Any) -> None:
        self.armed = True

    def _add(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if not self.armed:  # a later lookup of the same forward pass: the decoder's, a tied output layer's
            return None
        self.armed = False
        if self.delta is None:
            self.mask = positions(self.batch, output)
            self.delta = self.start(output.detach(), self.mask).detach().requires_grad_()
        return output + self.delta.to(output.dtype)


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
        return project(ascend(previous.delta, previous.grad, previous.mask, cfg.alpha, cfg.norm), cfg.epsilon, cfg.norm)


class FastGradient(AdversarialStep):
    """FGM: the clean pass, then one at ε along its gradient; logs the clean loss."""

    def passes(self, model: nn.Module, batch: Batch, backward: Backward) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.one_pass(model, batch, backward, no_perturbation, last=False)
        delta = ascend(clean.delta, clean.grad, clean.mask, self.cfg.epsilon, self.cfg.norm)
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

        def start(output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return random_start(output, mask, cfg.epsilon, cfg.norm)

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
