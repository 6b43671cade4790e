"""Preference losses against values worked out by hand from their papers' formulas, and the direction
each one pushes the chosen and rejected answers."""

from __future__ import annotations

import math

import pytest
import torch

from ftcli.engine.step import IGNORE_INDEX
from ftcli.tasks import preference_losses as losses
from ftcli.tasks.preference_losses import PairLogps


def softplus(x: float) -> float:
    """log(1 + e^x), which is -log σ(-x)."""
    return math.log1p(math.exp(x))


def pair(**given: float) -> PairLogps:
    values = {"chosen": -10.0, "rejected": -12.0, "ref_chosen": -11.0, "ref_rejected": -11.5, **given}
    return PairLogps(**{k: torch.tensor([v], dtype=torch.float64, requires_grad=k in ("chosen", "rejected"))
                        for k, v in values.items()})


MARGIN = (-10.0 + 11.0) - (-12.0 + 11.5)  # 1.5: the policy favours the chosen answer more than the reference
TOKENS = torch.tensor([4.0], dtype=torch.float64), torch.tensor([6.0], dtype=torch.float64)  # chosen, rejected


def test_the_margin_compares_policy_and_reference():
    assert pair().margin().item() == pytest.approx(MARGIN)
    with pytest.raises(ValueError, match="reference"):
        PairLogps(torch.zeros(1), torch.zeros(1)).margin()


@pytest.mark.parametrize(
    "loss, expected",
    [
        (lambda p: losses.dpo(p, beta=0.1), softplus(-0.15)),
        (lambda p: losses.dpo(p, beta=0.1, smoothing=0.2), 0.8 * softplus(-0.15) + 0.2 * softplus(0.15)),
        (lambda p: losses.robust(p, beta=0.1, flip_rate=0.2), (0.8 * softplus(-0.15) - 0.2 * softplus(0.15)) / 0.6),
        (lambda p: losses.ipo(p, beta=0.1), (MARGIN - 5.0) ** 2),
        (lambda p: losses.simpo(p, *TOKENS, beta=2.0, gamma=0.5), softplus(-(2.0 * (-10 / 4 + 12 / 6) - 0.5))),
        (
            lambda p: losses.orpo(p, *TOKENS, weight=0.1),
            2.5 + 0.1 * softplus(-((-2.5 - math.log1p(-math.exp(-2.5))) - (-2.0 - math.log1p(-math.exp(-2.0))))),
        ),
    ],
    ids=["dpo", "cdpo", "robust", "ipo", "simpo", "orpo"],
)
def test_pair_losses_equal_their_formulas_and_favour_the_chosen_answer(loss, expected):
    logps = pair()
    value = loss(logps)
    assert value.item() == pytest.approx(expected, rel=1e-9)
    value.sum().backward()
    assert logps.chosen.grad.item() < 0  # raising the chosen answer's probability lowers the loss
    assert logps.rejected.grad.item() > 0  # raising the rejected one's raises it


def test_ipo_pulls_the_margin_to_its_target_from_both_sides():
    beyond = pair(chosen=-2.0)  # margin 9.5, past the target 1/(2β) = 5
    losses.ipo(beyond, beta=0.1).sum().backward()
    assert beyond.chosen.grad.item() > 0


def test_kto_weighs_desirable_and_undesirable_completions_against_the_reference_point():
    logps = torch.tensor([-3.0, -3.0], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-4.0, -2.0], dtype=torch.float64)
    desirable = torch.tensor([True, False])
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    value = losses.kto(logps, ref, desirable, torch.tensor(0.5), beta=0.1, undesirable_weight=1.33)
    assert value.tolist() == pytest.approx([1 - sigmoid(0.1 * (1 - 0.5)), 1.33 * (1 - sigmoid(0.1 * (0.5 + 1)))])
    value.sum().backward()
    assert logps.grad[0] < 0 < logps.grad[1]
    below_zero = losses.kto(logps.detach(), ref, desirable, torch.tensor(-3.0), beta=0.1)
    assert below_zero[0].item() == pytest.approx(1 - sigmoid(0.1 * 1))  # the point never goes below zero


def test_bradley_terry_with_and_without_a_margin():
    chosen = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    rejected = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
    assert losses.bradley_terry(chosen, rejected).item() == pytest.approx(softplus(-0.8))
    value = losses.bradley_terry(chosen, rejected, torch.tensor([0.5], dtype=torch.float64))
    assert value.item() == pytest.approx(softplus(-0.3))
    value.sum().backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()


def test_answer_logps_sum_only_the_answer_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    ids = torch.tensor([[1, 2, 3, 4, 5], [6, 5, 4, 3, 0]])
    labels = ids.clone()
    labels[0, :3] = IGNORE_INDEX  # a three-token prompt, two answer tokens
    labels[1, :2] = IGNORE_INDEX
    labels[1, 4] = IGNORE_INDEX  # padding
    total, count = losses.answer_logps(logits, labels)
    logprobs = torch.log_softmax(logits, dim=-1)
    expected = [logprobs[0, 2, 4] + logprobs[0, 3, 5], logprobs[1, 1, 4] + logprobs[1, 2, 3]]
    torch.testing.assert_close(total, torch.stack(expected))
    assert count.tolist() == [2, 2]
