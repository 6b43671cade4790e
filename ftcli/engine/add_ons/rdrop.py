"""R-Drop (`trainer.rdrop`; Liang et al., 2021): two forward passes of each micro-batch with
independent dropout, trained on their mean cross-entropy plus α times their symmetric KL:

    ½(CE₁ + CE₂) + α · ½(KL(p₁‖p₂) + KL(p₂‖p₁))

each term a mean over the predictions that have a target (the units the task's loss is a mean
over) and over the model's heads (extractive QA's start and end). With `trainer.label_smoothing`
the two cross-entropies are smoothed. The passes are two calls of the model, not one over the
batch twice: a padding-free batch stays one row of several examples.
"""

from __future__ import annotations

import torch
from torch import nn

from ftcli import ui
from ftcli.engine.add_ons.label_smoothing import heads_loss
from ftcli.engine.add_ons.tally import Tally
from ftcli.engine.step import Batch, ClassScores, ModelLoss, WrappedStep

DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def symmetric_kl(first: ClassScores, second: ClassScores) -> torch.Tensor:
    """½(KL(p₁‖p₂) + KL(p₂‖p₁)) of two passes' class distributions, a mean over the predictions
    that have a target."""
    kept = first.kept()
    p, q = (torch.log_softmax(s.logits[kept].float(), dim=-1) for s in (first, second))
    return ((p.exp() * (p - q)).sum(-1) + (q.exp() * (q - p)).sum(-1)).mean() / 2


class RDrop(WrappedStep):
    """The task's own loss (`inner`) reworked by R-Drop with weight `alpha`; logs the mean KL term
    as `rdrop_kl`."""

    def __init__(self, inner: ModelLoss, alpha: float, smoothing: float = 0.0) -> None:
        super().__init__(inner)
        self.model_loss, self.alpha, self.smoothing = inner, alpha, smoothing
        self.tally = Tally()
        self.checked = False

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        _, first = self.model_loss.scores(model, batch)
        _, second = self.model_loss.scores(model, batch)
        if not self.checked:
            self._warn_without_dropout(model, first, second)
        ce = (heads_loss(first, self.smoothing) + heads_loss(second, self.smoothing)) / 2
        kl = torch.stack([symmetric_kl(a, b) for a, b in zip(first, second)]).mean()
        self.tally.add(kl, self.units(batch))
        return ce + self.alpha * kl

    def logged(self) -> dict[str, float]:
        mean = self.tally.read()
        return {**self.inner.logged(), **({"rdrop_kl": mean} if mean is not None else {})}

    def _warn_without_dropout(self, model: nn.Module, first: list[ClassScores], second: list[ClassScores]) -> None:
        """Once, on the first batch: no dropout layer and two passes that agree exactly mean the model
        has no active dropout. Equal passes alone do not: LoRA's dropout acts on a product that is
        zero until its first step."""
        self.checked = True
        dropout = any(isinstance(m, DROPOUT) and m.p > 0 and m.training for m in model.modules())
        if not dropout and all(torch.equal(a.logits, b.logits) for a, b in zip(first, second)):
            ui.warn("trainer.rdrop: the model's two dropout passes gave the same scores (it has no active "
                    "dropout), so R-Drop adds nothing but a second pass; set trainer.rdrop=0, or train a model "
                    "with dropout")
