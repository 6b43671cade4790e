"""Label smoothing (`trainer.label_smoothing`): the model's cross-entropy against targets that keep
1 − ε of their weight and spread ε over all classes (`torch`'s definition), for every head the
model's own loss averages (one; extractive QA's start and end)."""

from __future__ import annotations

import torch
from torch import nn

from ftcli.engine.step import Batch, ClassScores, ModelLoss, WrappedStep, cross_entropy


def heads_loss(heads: list[ClassScores], smoothing: float) -> torch.Tensor:
    """The mean over heads of each head's mean cross-entropy over its predictions that have a
    target: the model's own loss when `smoothing` is 0."""
    return torch.stack([cross_entropy(head, smoothing) for head in heads]).mean()


class LabelSmoothing(WrappedStep):
    """The task's own loss (`inner`), computed from its class scores with smoothing `epsilon`."""

    def __init__(self, inner: ModelLoss, epsilon: float) -> None:
        super().__init__(inner)
        self.model_loss, self.epsilon = inner, epsilon

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        _, heads = self.model_loss.scores(model, batch)
        return heads_loss(heads, self.epsilon)
