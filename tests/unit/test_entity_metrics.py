"""Tests of the bundled seqeval metric (ftcli.tasks.metrics.entity_metrics) on hand-computed cases."""

from __future__ import annotations

import pytest

from ftcli.tasks.metrics import EntityMetrics, entity_metrics, load_metric

TYPES = ["LOC", "MISC", "ORG", "PER"]


def test_two_gold_two_predicted_one_correct():
    # gold entities: PER (words 0-1), LOC (word 3)
    # predicted:     PER (words 0-1), ORG (word 3)
    # correct = 1 (PER: same type and span); precision = 1/2, recall = 1/2, F1 = 2PR/(P+R) = 0.5
    # tags: 3 of 4 words agree (word 3: B-LOC vs B-ORG), so token accuracy = 3/4
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"]]
    result = entity_metrics(predicted, gold, TYPES, strict=False)
    assert (result["precision"], result["recall"], result["f1"]) == (0.5, 0.5, 0.5)
    assert result["token_accuracy"] == 0.75
    assert result["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},  # found, not predicted
        "MISC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},  # in neither: still listed
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},  # predicted, not in gold
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }


def test_a_partial_span_is_not_a_match():
    # gold: PER over words 0-1 and LOC at word 3; predicted: PER over word 0 only, LOC at word 3
    # correct = 1 (LOC) of 2 predicted and 2 gold: P = R = 1/2; per type PER gets 0
    result = entity_metrics([["B-PER", "O", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]], TYPES, strict=False)
    assert (result["precision"], result["recall"], result["f1"]) == (0.5, 0.5, 0.5)
    assert result["per_type"]["PER"]["f1"] == 0.0 and result["per_type"]["LOC"]["f1"] == 1.0


def test_micro_average_over_sentences():
    # sentence 1: gold PER, LOC; predicted PER (right), MISC (wrong)   -> 1 correct, 2 predicted, 2 gold
    # sentence 2: gold ORG;      predicted ORG (right)                 -> 1 correct, 1 predicted, 1 gold
    # P = 2/3, R = 2/3, F1 = 2/3 (micro: counts pooled, not sentence scores averaged)
    gold = [["B-PER", "O", "B-LOC"], ["B-ORG", "I-ORG"]]
    predicted = [["B-PER", "O", "B-MISC"], ["B-ORG", "I-ORG"]]
    result = entity_metrics(predicted, gold, TYPES, strict=False)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)


def test_strict_mode_drops_an_entity_that_starts_with_inside():
    # default mode reads I-PER I-PER as one PER entity, as conlleval does: a match, F1 = 1
    # strict IOB2 mode needs B- to start an entity: nothing predicted, P = R = F1 = 0
    gold, predicted = [["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]
    assert entity_metrics(predicted, gold, TYPES, strict=False)["f1"] == 1.0
    strict = entity_metrics(predicted, gold, TYPES, strict=True)
    assert (strict["precision"], strict["recall"], strict["f1"]) == (0.0, 0.0, 0.0)
    assert strict["token_accuracy"] == pytest.approx(2 / 3)  # tag accuracy does not depend on the mode


def test_no_entities_anywhere():
    result = entity_metrics([["O", "O"]], [["O", "O"]], ["PER"], strict=False)
    assert (result["precision"], result["recall"], result["f1"], result["token_accuracy"]) == (0.0, 0.0, 0.0, 1.0)
    assert result["per_type"] == {"PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}


def test_seqeval_is_bundled():
    assert isinstance(load_metric("seqeval"), EntityMetrics)
