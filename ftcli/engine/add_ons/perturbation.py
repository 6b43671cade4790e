"""A perturbation δ of the input embeddings: where it enters the model, and its geometry.

δ is added to the output of the first lookup in the input embeddings of each forward pass of the
model (hooks on every embedding module holding the input-embedding weight, while attached): for
an encoder-decoder that is the encoder's input, not the decoder's (the targets, shifted); for
PEFT's prompt learning the real tokens, not the virtual ones. A pass that runs the model twice
(R-Drop) perturbs both forward passes with the same δ, a leaf tensor whose gradient the pass
leaves behind.

Sizes are taken per example over its tokens that are not padding (`attention_mask`): per row, or
per example of a padding-free row that packs several (`position_ids` starting again at 0). So an
example's perturbation depends neither on what else its batch holds nor on its padding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from ftcli.config.schema import PerturbationNorm
from ftcli.engine.step import Batch
from ftcli.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

Start = Callable[[torch.Tensor, "Examples"], torch.Tensor]
"""δ of a pass, from the embedding lookup's output (detached) and the examples it holds."""


@dataclass
class Examples:
    """The examples of an embedding output (batch, tokens, hidden): which positions hold real tokens,
    and the example each position belongs to, which norms are taken over."""

    mask: torch.Tensor  # (batch, tokens, 1), 1.0 at real tokens
    ids: torch.Tensor  # (batch · tokens,): each position's example, counted across the batch

    @classmethod
    def of(cls, batch: Batch, output: torch.Tensor) -> Examples:
        """A row per example, or, for a padding-free row (no `attention_mask`), an example from
        each position 0 of `position_ids` to the next."""
        shape = output.shape[:-1]
        mask, positions = batch.get("attention_mask"), batch.get("position_ids")
        rows = torch.arange(shape[0], device=output.device).repeat_interleave(shape[-1])
        if mask is not None and mask.shape == shape:
            return cls(mask[..., None].to(torch.float32), rows)
        ones = output.new_ones((*shape, 1), dtype=torch.float32)
        if positions is not None and positions.shape == shape:
            return cls(ones, ((positions == 0).flatten().cumsum(0) - 1).clamp(min=0))
        return cls(ones, rows)

    def norms(self, values: torch.Tensor) -> torch.Tensor:
        """Each example's l2 norm over its positions and hidden units, at each of its positions (batch, tokens, 1)."""
        squares = values.float().pow(2).sum(-1).flatten()
        totals = squares.new_zeros(squares.numel()).index_add_(0, self.ids, squares)
        return totals.sqrt()[self.ids].view(*values.shape[:-1], 1)

    def sizes(self, hidden: int) -> torch.Tensor:
        """How many values (real tokens × `hidden`) each position's example holds (batch, tokens, 1)."""
        return self.norms(self.mask).pow(2) * hidden


def ascend(delta: torch.Tensor, grad: torch.Tensor, examples: Examples, size: float,
           norm: PerturbationNorm) -> torch.Tensor:
    """`delta` moved by `size` (in `norm`, per example) along the gradient on the real tokens: the
    steepest ascent of that size. An example whose gradient is zero stays where it is."""
    grad = grad * examples.mask
    if norm is PerturbationNorm.linf:
        direction = grad.sign()
    else:
        direction = grad / examples.norms(grad).clamp(min=torch.finfo(torch.float32).tiny)
    return delta + size * direction


def project(delta: torch.Tensor, examples: Examples, epsilon: float, norm: PerturbationNorm) -> torch.Tensor:
    """The nearest point to `delta` inside the ε-ball of `norm`: examples of l2 norm above ε scaled
    down to ε; linf: each value clamped to [-ε, ε]."""
    if norm is PerturbationNorm.linf:
        return delta.clamp(-epsilon, epsilon)
    return delta * (epsilon / examples.norms(delta)).clamp(max=1.0)


def random_start(output: torch.Tensor, examples: Examples, epsilon: float, norm: PerturbationNorm) -> torch.Tensor:
    """FreeLB's start: values drawn uniformly from [-1, 1] on the real tokens, scaled into the ε-ball
    (l2: by ε/√d for an example's d values, whose norm is then at most ε; linf: by ε)."""
    noise = torch.empty(output.shape, dtype=torch.float32, device=output.device).uniform_(-1.0, 1.0) * examples.mask
    if norm is PerturbationNorm.linf:
        return noise * epsilon
    return noise * epsilon / examples.sizes(output.shape[-1]).sqrt().clamp(min=1.0)


def no_perturbation(output: torch.Tensor, examples: Examples) -> torch.Tensor:
    return torch.zeros(output.shape, dtype=torch.float32, device=output.device)


def fixed(delta: torch.Tensor) -> Start:
    return lambda output, examples: delta


@dataclass
class Pass:
    """One pass of a micro-batch: its loss, the δ it ran at, the gradient with respect to δ, and its examples."""

    loss: torch.Tensor
    delta: torch.Tensor
    grad: torch.Tensor
    examples: Examples


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
        self.examples: Examples | None = None
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
            self.delta, self.examples, self.batch = None, None, {}

    def run(self, batch: Batch, start: Start, passes: Callable[[], torch.Tensor]) -> Pass:
        """Run `passes` (the inner step's forward and backward passes of `batch`) at δ = `start(...)`.

        Raises:
            ConfigError: when the model never looked up its input embeddings, so nothing was perturbed.
        """
        self.batch, self.start, self.delta = batch, start, None
        loss = passes()
        if self.delta is None or self.examples is None:
            raise ConfigError(
                "trainer.adversarial: the model's forward pass never looked up its input embeddings "
                f"({type(self.model).__name__}.get_input_embeddings()), so there is nothing to perturb",
                hint="set trainer.adversarial.method=none for this model",
            )
        grad = self.delta.grad if self.delta.grad is not None else torch.zeros_like(self.delta)
        return Pass(loss, self.delta.detach(), grad, self.examples)

    def _arm(self, module: nn.Module, args: Any) -> None:
        self.armed = True

    def _add(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if not self.armed:  # a later lookup of the same forward pass: the decoder's, a tied output layer's
            return None
        self.armed = False
        if self.delta is None:
            self.examples = Examples.of(self.batch, output)
            self.delta = self.start(output.detach(), self.examples).detach().requires_grad_()
        return output + self.delta.to(output.dtype)
