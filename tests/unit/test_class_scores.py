"""`ModelLoss.scores`: the class scores the loss-reworking add-ons start from. Their plain
cross-entropy must be the model's own loss, for every head shape a task trains with."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from ftcli.engine.step import IGNORE_INDEX, LossUnit, ModelLoss, Objective, cross_entropy
from ftcli.models.tiny import tiny_config


def model(auto: type, arch: str, **config):
    torch.manual_seed(0)
    return auto.from_config(tiny_config(arch, **config)).eval()


def batch(rows: int = 3, length: int = 7, **extra) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    mask = torch.ones(rows, length, dtype=torch.long)
    mask[0, 4:] = 0
    return {"input_ids": torch.randint(5, 90, (rows, length)), "attention_mask": mask, **extra}


def token_labels(rows: int = 3, length: int = 7, classes: int = 3) -> torch.Tensor:
    labels = torch.randint(0, classes, (rows, length))
    labels[0, 4:] = IGNORE_INDEX
    labels[:, 0] = IGNORE_INDEX
    return labels


@pytest.mark.parametrize("auto, arch, unit, config, labels", [
    (AutoModelForSequenceClassification, "bert", LossUnit.rows, {"num_labels": 3}, lambda: torch.tensor([0, 2, 1])),
    (AutoModelForTokenClassification, "bert", LossUnit.tokens, {"num_labels": 3}, token_labels),
    (AutoModelForCausalLM, "gpt2", LossUnit.next_tokens, {}, lambda: token_labels(classes=90)),
    (AutoModelForSeq2SeqLM, "t5", LossUnit.tokens, {}, lambda: token_labels(classes=90)),
])
def test_cross_entropy_of_the_scores_is_the_models_own_loss(auto, arch, unit, config, labels):
    trained, inputs = model(auto, arch, **config), batch(labels=labels())
    with torch.no_grad():
        out, heads = ModelLoss(unit).scores(trained, inputs)
        assert len(heads) == 1
        assert torch.allclose(cross_entropy(heads[0]), out.loss, atol=1e-6)


def test_extractive_qa_has_a_start_and_an_end_head_whose_mean_is_the_loss():
    trained = model(AutoModelForQuestionAnswering, "bert")
    # a position past the window (here 9 of 7 tokens) predicts nothing, as in the model's own loss
    inputs = batch(start_positions=torch.tensor([1, 9, 0]), end_positions=torch.tensor([3, 9, 6]))
    with torch.no_grad():
        out, (start, end) = ModelLoss(LossUnit.rows, Objective.spans).scores(trained, inputs)
    assert start.kept().tolist() == [True, False, True]
    assert torch.allclose((cross_entropy(start) + cross_entropy(end)) / 2, out.loss, atol=1e-6)


def test_smoothing_spreads_epsilon_over_all_classes():
    logits, targets = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    from ftcli.engine.step import ClassScores

    eps, logp = 0.1, torch.log_softmax(logits, -1)[0]
    closed_form = -((1 - eps) * logp[0] + eps / 3 * logp.sum())
    assert torch.allclose(cross_entropy(ClassScores(logits, targets), eps), closed_form)


def test_a_loss_without_classes_has_no_scores():
    trained = model(AutoModelForSequenceClassification, "bert", num_labels=1)
    with pytest.raises(ValueError, match="no class scores"):
        ModelLoss(LossUnit.rows, Objective.other).scores(trained, batch(labels=torch.tensor([0.5, 1.0, 2.0])))
