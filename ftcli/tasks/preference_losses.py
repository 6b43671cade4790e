"""Losses of learning from preferences, on the log-probabilities of whole answers.

Each function takes per-example tensors (one value per pair or per completion) and returns the
per-example loss, so a training step can average it over its units (`ftcli.engine.step`). A log
probability of an answer is the sum over its answer tokens (`answer_logps`); the length-normalised
losses divide by the token count themselves. Written here rather than taken from TRL: TRL's losses
live inside its trainers, bound to their batches and their reference-model handling.

    dpo       Rafailov et al. 2023, with cDPO's label smoothing (Mitchell 2023) when `smoothing` > 0
    robust    rDPO, Chowdhury et al. 2024: unbiased under a known rate of flipped labels
    ipo       Azar et al. 2023: a squared loss that does not push the margin to infinity
    simpo     Meng et al. 2024: reference-free, length-normalised, with a target margin `gamma`
    orpo      Hong et al. 2024: reference-free, the chosen answer's NLL plus an odds-ratio term
    kto       Ethayarajh et al. 2024: unpaired completions, each desirable or not
    bradley_terry  a reward model's pairwise loss, with an optional margin per pair
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ftcli.engine.step import IGNORE_INDEX


@dataclass(frozen=True)
class PairLogps:
    """Summed answer log-probabilities of a batch of pairs, under the policy and the reference."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    ref_chosen: torch.Tensor | None = None  # None: a reference-free loss
    ref_rejected: torch.Tensor | None = None

    def margin(self) -> torch.Tensor:
        """How much more the policy than the reference favours the chosen answer, in log-probability."""
        if self.ref_chosen is None or self.ref_rejected is None:
            raise ValueError("this loss needs the reference model's log-probabilities")
        return (self.chosen - self.ref_chosen) - (self.rejected - self.ref_rejected)


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's summed log-probability of its answer tokens, and their count, from a causal LM.

    `labels` are the input ids with every token that is not part of the answer set to
    IGNORE_INDEX (as `task=instruction` masks the prompt); the logits at position t predict the
    token at t + 1. Only the answer positions go through the softmax: a prompt's and the
    padding's logits over the whole vocabulary are never copied to float32.
    """
    targets = labels[:, 1:]
    scored = targets != IGNORE_INDEX
    rows, positions = scored.nonzero(as_tuple=True)
    picked = torch.log_softmax(logits[rows, positions].float(), dim=-1)
    token_logps = picked.gather(-1, targets[rows, positions].unsqueeze(-1)).squeeze(-1)
    sums = torch.zeros(labels.shape[0], dtype=token_logps.dtype, device=logits.device).index_add(0, rows, token_logps)
    return sums, scored.sum(-1)


def dpo(logps: PairLogps, beta: float, smoothing: float = 0.0) -> torch.Tensor:
    """-log σ(β·margin); with `smoothing` ε, the label is taken to be wrong with probability ε (cDPO)."""
    scaled = beta * logps.margin()
    return -(1 - smoothing) * F.logsigmoid(scaled) - smoothing * F.logsigmoid(-scaled)


def robust(logps: PairLogps, beta: float, flip_rate: float) -> torch.Tensor:
    """rDPO: the DPO loss corrected for labels flipped at rate ε < 0.5, unbiased in expectation."""
    scaled = beta * logps.margin()
    return (-(1 - flip_rate) * F.logsigmoid(scaled) + flip_rate * F.logsigmoid(-scaled)) / (1 - 2 * flip_rate)


def ipo(logps: PairLogps, beta: float) -> torch.Tensor:
    """(margin - 1/(2β))²: the margin is pulled to a finite target instead of pushed without end."""
    return (logps.margin() - 1 / (2 * beta)) ** 2


def simpo(logps: PairLogps, chosen_tokens: torch.Tensor, rejected_tokens: torch.Tensor, beta: float,
          gamma: float) -> torch.Tensor:
    """-log σ(β·(mean chosen log-prob − mean rejected log-prob) − γ), without a reference model."""
    chosen, rejected = logps.chosen / chosen_tokens.clamp(min=1), logps.rejected / rejected_tokens.clamp(min=1)
    return -F.logsigmoid(beta * (chosen - rejected) - gamma)


def orpo(logps: PairLogps, chosen_tokens: torch.Tensor, rejected_tokens: torch.Tensor, weight: float) -> torch.Tensor:
    """The chosen answer's NLL per token minus `weight`·log σ(log odds(chosen) − log odds(rejected)).

    The odds of an answer are p/(1 − p) with p its mean per-token probability, so
    log odds = mean log-prob − log(1 − exp(mean log-prob)).
    """
    chosen, rejected = logps.chosen / chosen_tokens.clamp(min=1), logps.rejected / rejected_tokens.clamp(min=1)
    return -chosen - weight * F.logsigmoid(_log_odds(chosen) - _log_odds(rejected))


def _log_odds(mean_logp: torch.Tensor) -> torch.Tensor:
    """log(p / (1 − p)) of a mean log-probability; an answer the model is certain of (p = 1) would
    give infinite odds, so p stops just short of it."""
    mean_logp = mean_logp.clamp(max=-1e-6)
    return mean_logp - torch.log1p(-torch.exp(mean_logp))


def kto(logps: torch.Tensor, ref_logps: torch.Tensor, desirable: torch.Tensor, reference_kl: torch.Tensor,
        beta: float, desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> torch.Tensor:
    """KTO: a desirable completion gains as its log-ratio rises above the reference point, an
    undesirable one as it falls below it; the reference point is the policy's KL from the reference
    (estimated from mismatched completions, never below zero, and not differentiated)."""
    ratio = logps - ref_logps
    point = reference_kl.detach().clamp(min=0)
    good = desirable_weight * (1 - torch.sigmoid(beta * (ratio - point)))
    bad = undesirable_weight * (1 - torch.sigmoid(beta * (point - ratio)))
    return torch.where(desirable, good, bad)


def bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | None = None) -> torch.Tensor:
    """A reward model's pairwise loss: -log σ(r_chosen − r_rejected − margin)."""
    gap = chosen - rejected - (margin if margin is not None else 0.0)
    return -F.logsigmoid(gap)
