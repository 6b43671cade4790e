"""Ensembles' arithmetic: the mean of the members' probabilities, the majority vote, and its loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ftcli.config.schema import Ensemble
from ftcli.engine.combine import combined, combined_outputs, nll


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


A = [np.array([2.0, 0.0, -1.0]), np.array([[0.0, 1.0, 0.0], [3.0, 0.0, 0.0]])]  # a text, and two tokens
B = [np.array([0.0, 1.0, 0.5]), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])]


def test_the_mean_is_the_mean_of_the_members_probabilities():
    for got, a, b in zip(combined([A, B], Ensemble.mean), A, B):
        np.testing.assert_allclose(softmax(got), (softmax(a) + softmax(b)) / 2, rtol=1e-6)


def test_one_member_gives_its_own_probabilities_back():
    for got, a in zip(combined([A], Ensemble.mean), A):
        np.testing.assert_allclose(softmax(got), softmax(a), rtol=1e-6)


def test_a_majority_wins_and_a_tie_goes_to_the_likelier_class_on_average():
    # three models: two vote class 1 (barely), one votes class 0 (surely)
    members = [[np.log(np.array([0.45, 0.55]))], [np.log(np.array([0.45, 0.55]))], [np.log(np.array([0.99, 0.01]))]]
    [votes] = combined(members, Ensemble.vote)
    mean = np.array([0.45 + 0.45 + 0.99, 0.55 + 0.55 + 0.01]) / 3
    np.testing.assert_allclose(np.exp(votes), (np.array([1.0, 2.0]) + mean) / 4, rtol=1e-6)  # a distribution
    assert votes.argmax() == 1 and mean.argmax() == 0  # the vote decides, not the mean
    [tie] = combined(members[1:], Ensemble.vote)  # one vote each: the mean decides
    assert tie.argmax() == 0 and math.isclose(float(np.exp(tie).sum()), 1.0, rel_tol=1e-6)


def test_the_loss_is_the_mean_negative_log_likelihood_of_the_targets_that_are_set():
    logs = [np.log(np.array([0.5, 0.25, 0.25])), np.log(np.array([[0.05, 0.9, 0.05], [0.2, 0.2, 0.6]]))]
    targets = [np.array(0), np.array([1, -100])]
    assert nll(logs, targets) == pytest.approx(-(math.log(0.5) + math.log(0.9)) / 2)
    assert nll(logs[1:], [np.array([-100, -100])]) is None
    outputs = combined_outputs([A[:1], B[:1]], Ensemble.mean, None)
    assert outputs.loss is None and outputs.logits.shape == (1, 3)  # per-text logits stack like one model's
