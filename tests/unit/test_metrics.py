"""Tests of ftcli.tasks.metrics: the bundled classification metric on a hand-computed case, and load_metric."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest

from ftcli.errors import ConfigError
from ftcli.tasks.metrics import ClassificationMetrics, classification_metrics, load_metric


def test_classification_metrics_by_hand():
    # class 2 ("c") occurs once in the references and is never predicted.
    references = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 1, 1, 0, 1])
    # confusion matrix, rows = true class, columns = predicted class:
    #   a: 2 a, 1 b, 0 c    b: 1 a, 1 b, 0 c    c: 0 a, 1 b, 0 c
    # precision a = 2/3, b = 1/3, c = 0 (nothing predicted: zero_division=0)
    # recall    a = 2/3, b = 1/2, c = 0
    # f1        a = 2/3, b = 2*(1/3*1/2)/(1/3+1/2) = 2/5, c = 0
    result = classification_metrics(predictions, references, ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(3 / 6)
    assert result["precision_macro"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert result["recall_macro"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert result["f1_macro"] == pytest.approx((2 / 3 + 2 / 5 + 0) / 3)
    assert result["f1_per_class"] == pytest.approx({"a": 2 / 3, "b": 2 / 5, "c": 0.0})
    assert result["support"] == {"a": 3, "b": 2, "c": 1}
    assert result["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 1, 0]]


def test_classification_metrics_keep_rows_for_absent_classes():
    result = classification_metrics(np.array([0, 0]), np.array([0, 0]), ["x", "y"])
    assert result["accuracy"] == 1.0
    assert result["support"] == {"x": 2, "y": 0}
    assert result["f1_per_class"] == {"x": 1.0, "y": 0.0}
    assert result["confusion_matrix"] == [[2, 0], [0, 0]]


def test_bundled_metric_without_label_names():
    result = load_metric("classification").compute(predictions=[1, 3, 3], references=[1, 3, 1])
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["support"] == {"1": 2, "3": 1}
    assert result["confusion_matrix"] == [[1, 1], [0, 1]]


def test_load_metric_bundled_does_not_call_evaluate_load(monkeypatch):
    def fail(name, *args, **kwargs):
        raise AssertionError(f"evaluate.load({name!r}) called")

    monkeypatch.setattr(evaluate, "load", fail)
    assert isinstance(load_metric("classification"), ClassificationMetrics)


def test_load_metric_unknown_name_raises_config_error(monkeypatch):
    calls = []

    def offline(name, *args, **kwargs):
        calls.append(name)
        raise ConnectionError("no network")

    monkeypatch.setattr(evaluate, "load", offline)
    with pytest.raises(ConfigError, match="metric 'bleurt' is not bundled with ftcli") as info:
        load_metric("bleurt")
    assert calls == ["bleurt"]
    assert "no network" in info.value.message
    assert info.value.hint == "bundled metrics: bleu, classification, multilabel, regression, rouge, seqeval, squad; other names need network access once"
