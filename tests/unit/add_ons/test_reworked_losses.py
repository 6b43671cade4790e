"""R-Drop and label smoothing rework the model's own cross-entropy from its class scores; on fixed
scores both equal their formulas computed by hand, over the predictions that have a target."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ftcli.engine.add_ons.label_smoothing import LabelSmoothing
from ftcli.engine.add_ons.rdrop import RDrop
from ftcli.engine.step import IGNORE_INDEX, LossUnit, ModelLoss, Objective

# two rows of two tokens over three classes; the second token of the first row predicts nothing
LABELS = [[0, IGNORE_INDEX], [2, 1]]
FIRST = [[[1.0, 0.0, -1.0], [3.0, 3.0, 3.0]], [[0.5, 0.5, 0.0], [2.0, -1.0, 0.0]]]
SECOND = [[[0.0, 1.0, 0.0], [0.0, 0.0, 9.0]], [[1.0, 0.0, 0.0], [1.5, -0.5, 0.5]]]


class Scripted(nn.Module):
    """A model whose forward passes give the scores it is handed, one set per call (dropout's draws):
    `logits`, or a QA head's start and end logits."""

    def __init__(self, *outputs) -> None:
        super().__init__()
        self.outputs, self.calls = outputs, 0

    def forward(self, **batch):
        out = self.outputs[self.calls % len(self.outputs)]
        self.calls += 1
        if isinstance(out, tuple):
            return SimpleNamespace(start_logits=torch.tensor(out[0]), end_logits=torch.tensor(out[1]), loss=None)
        return SimpleNamespace(logits=torch.tensor(out), loss=None)


def softmax(row):
    exps = [math.exp(x) for x in row]
    return [e / sum(exps) for e in exps]


def flat(rows):
    return [x for row in rows for x in row]


def by_hand(first, second, labels, alpha: float, smoothing: float = 0.0) -> float:
    """½(CE₁ + CE₂) + α·½(KL(p₁‖p₂) + KL(p₂‖p₁)), each a mean over the predictions with a target."""
    ce, kl = [], []
    for a, b, y in zip(first, second, labels):
        if y == IGNORE_INDEX:
            continue
        p, q = softmax(a), softmax(b)
        for probs in (p, q):
            ce.append(-(1 - smoothing) * math.log(probs[y]) - smoothing / len(a) * sum(math.log(x) for x in probs))
        kl.append(sum(x * math.log(x / z) for x, z in zip(p, q)) + sum(z * math.log(z / x) for x, z in zip(p, q)))
    return sum(ce) / len(ce) + alpha * sum(kl) / (2 * len(kl))


def batch():
    return {"input_ids": torch.ones(2, 2, dtype=torch.long), "labels": torch.tensor(LABELS)}


@pytest.mark.parametrize("alpha, smoothing", [(0.0, 0.0), (1.0, 0.0), (4.0, 0.1)])
def test_rdrop_is_the_mean_cross_entropy_plus_alpha_times_the_symmetric_kl(alpha, smoothing):
    step = RDrop(ModelLoss(LossUnit.tokens), alpha, smoothing)
    loss = step.loss(Scripted(FIRST, SECOND), batch())
    tokens = (flat(FIRST), flat(SECOND), flat(LABELS))
    assert loss.item() == pytest.approx(by_hand(*tokens, alpha, smoothing), rel=1e-6)
    assert step.logged()["rdrop_kl"] == pytest.approx(by_hand(*tokens, 1.0) - by_hand(*tokens, 0.0), rel=1e-5)
    assert step.logged() == {}


def test_rdrop_on_two_heads_is_the_mean_of_each_heads():
    """Extractive QA: the start and the end head's R-Drop losses averaged, as the model's own loss
    averages theirs; an end past the window (position 5 of 3 tokens) predicts nothing."""
    starts, ends = (FIRST[0][0], FIRST[1][0]), (FIRST[0][1], FIRST[1][1])
    starts_2, ends_2 = (SECOND[0][0], SECOND[1][0]), (SECOND[0][1], SECOND[1][1])
    spans = {"input_ids": torch.ones(2, 3, dtype=torch.long), "start_positions": torch.tensor([0, 2]),
             "end_positions": torch.tensor([1, 5])}
    loss = RDrop(ModelLoss(LossUnit.rows, Objective.spans), 2.0).loss(
        Scripted((starts, ends), (starts_2, ends_2)), spans)
    expected = (by_hand(starts, starts_2, [0, 2], 2.0) + by_hand(ends, ends_2, [1, IGNORE_INDEX], 2.0)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_rdrop_warns_once_when_the_two_passes_agree_without_dropout(monkeypatch):
    from ftcli import ui

    warned = []
    monkeypatch.setattr(ui, "warn", warned.append)
    step = RDrop(ModelLoss(LossUnit.tokens), 1.0)
    for _ in range(3):
        step.loss(Scripted(FIRST), batch())  # the same scores twice: no dropout
    assert len(warned) == 1 and "no active dropout" in warned[0]
    warned.clear()
    RDrop(ModelLoss(LossUnit.tokens), 1.0).loss(Scripted(FIRST, SECOND), batch())
    assert not warned
    with_dropout = Scripted(FIRST)
    with_dropout.lora_dropout = nn.Dropout(0.1)  # acting on LoRA's B·A, zero before the first step
    RDrop(ModelLoss(LossUnit.tokens), 1.0).loss(with_dropout, batch())
    assert not warned


def test_label_smoothing_is_the_closed_form_over_the_kept_predictions():
    eps, terms = 0.2, []
    for scores, label in zip(flat(FIRST), flat(LABELS)):
        if label != IGNORE_INDEX:
            logp = [math.log(p) for p in softmax(scores)]
            terms.append(-(1 - eps) * logp[label] - eps / 3 * sum(logp))
    loss = LabelSmoothing(ModelLoss(LossUnit.tokens), eps).loss(Scripted(FIRST), batch())
    assert len(terms) == 3 and loss.item() == pytest.approx(sum(terms) / 3, rel=1e-6)
