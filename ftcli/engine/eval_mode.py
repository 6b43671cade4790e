"""Running a model in eval mode for a while, and handing it back in the mode it was in; and
switching its dropout off for good."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode (no dropout) inside the block; training mode again after it, if it was on.

    Evaluation runs in the middle of training, so the mode it found must come back even when the
    block fails (an interrupt, a bad batch) and training is resumed in the same process.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def disable_dropout(model: nn.Module) -> None:
    """Every dropout layer of `model` off, in training mode too: an answer's log-probability is then
    the same in the policy's forward pass as in the reference's, or as when it was sampled, so a
    margin or a KL term measures the weights, not the noise (preference tasks, GRPO)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
