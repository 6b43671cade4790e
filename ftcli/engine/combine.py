"""Combining several models' class probabilities into one prediction: their mean, or a majority vote.

Each model gives logits for every prediction (one row per text, or per token); the combination's
logits are the log of the combined probabilities, so a task reads them as it reads one model's:
their softmax is the combined distribution and their argmax its class.

- `mean`: p = (1/n) Σₘ softmax(zₘ).
- `vote`: each model votes for its likeliest class, and p = (votes + p_mean) / (n + 1): the vote
  shares with the mean probabilities as one more, fractional, voter. The class with the most votes
  wins, and a tie goes to the class the models find likelier on average. (The usual hard vote,
  scikit-learn's, gives a tie to the lowest class id, which decides every disagreement of two
  models by the order of the label set.)
"""

from __future__ import annotations

import numpy as np

from ftcli.config.schema import Ensemble
from ftcli.engine.inference import Outputs
from ftcli.engine.step import IGNORE_INDEX


def combined(members: list[list[np.ndarray]], rule: Ensemble) -> list[np.ndarray]:
    """Per feature, the log of the combined probabilities; `members` holds each model's logits, one
    (classes,) or (tokens, classes) array per feature."""
    logs = []
    for logits in zip(*members):
        stacked = np.stack(logits).astype(np.float64)  # (models, ..., classes)
        shifted = np.exp(stacked - stacked.max(-1, keepdims=True))
        probs = shifted / shifted.sum(-1, keepdims=True)
        mean = probs.mean(0)
        if rule is Ensemble.vote:
            classes = probs.shape[-1]
            votes = np.eye(classes)[probs.argmax(-1)].sum(0)
            mean = (votes + mean) / (len(members) + 1)
        logs.append(np.log(mean).astype(np.float32))
    return logs


def nll(log_probs: list[np.ndarray], targets: list[np.ndarray]) -> float | None:
    """The mean negative log-likelihood of the targets under the combined distributions, over the
    predictions that have one (IGNORE_INDEX: none); None when none has."""
    total, count = 0.0, 0
    for logs, target in zip(log_probs, targets):
        target = np.asarray(target)
        kept = target != IGNORE_INDEX
        rows = logs.reshape(-1, logs.shape[-1])[kept.reshape(-1)]
        total -= float(rows[np.arange(len(rows)), target.reshape(-1)[kept.reshape(-1)]].sum())
        count += int(kept.sum())
    return total / count if count else None


def combined_outputs(members: list[list[np.ndarray]], rule: Ensemble, targets: list[np.ndarray] | None) -> Outputs:
    """The combination as one model's `Outputs` (per-text logits stacked, per-token ones a list),
    with the loss `nll` of the targets when they are given."""
    logs = combined(members, rule)
    loss = nll(logs, targets) if targets is not None else None
    return Outputs(np.stack(logs) if logs and logs[0].ndim == 1 else logs, loss)
