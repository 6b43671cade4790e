"""Every task's `prediction_fields` names every field its `predictions` return, so `predict` can
refuse an input that holds one before the model runs."""

from __future__ import annotations

import numpy as np
import pytest

from ftcli.config.schema import DataConfig
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig, Problem, SequenceClassification


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.modeling import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def fields_of(predictions: list[dict]) -> set[str]:
    return {name for prediction in predictions for name in prediction}


def test_every_task_that_predict_runs_declares_its_fields():
    for name in TASKS.names():
        entry = TASKS.get(name)
        if name != "prompting":  # eval only: it has no run directory to predict with
            assert entry.impl.prediction_fields(entry.config_cls()), name


@pytest.mark.parametrize("problem", list(Problem))
def test_classification(problem):
    task, cfg = SequenceClassification(), ClassificationConfig(problem=problem)
    labels = ["score"] if problem is Problem.regression else ["a", "b"]
    predictions = task.predictions(np.zeros((2, len(labels))), [{}, {}], cfg, labels)
    assert fields_of(predictions) == set(task.prediction_fields(cfg))


def test_ner_words_and_raw_text(tokenizer):
    entry = TASKS.get("ner")
    task, cfg, labels = entry.impl, entry.config_cls(), ["O", "B-PER", "I-PER"]
    features = task.encode([{"tokens": ["Ada", "sang"]}, {"text": "Ada sang"}], tokenizer, cfg, DataConfig(), labels,
                           "f", with_labels=False)
    logits = [np.zeros((len(f["input_ids"]), len(labels))) for f in features]
    assert fields_of(task.predictions(logits, features, cfg, labels)) == set(task.prediction_fields(cfg))


def test_qa(tokenizer):
    entry = TASKS.get("qa")
    task, cfg = entry.impl, entry.config_cls()
    features = task.encode([{"question": "Who?", "context": "Ada sang."}], tokenizer, cfg, DataConfig(),
                           ["start", "end"], "f", with_labels=False)
    logits = [np.zeros((len(f["input_ids"]), 2)) for f in features]
    assert fields_of(task.predictions(logits, features, cfg, [])) == set(task.prediction_fields(cfg))


@pytest.mark.parametrize("name", ["summarization", "translation", "instruction"])
def test_generation(name):
    entry = TASKS.get(name)
    cfg = entry.config_cls()
    assert fields_of(entry.impl.predictions(["a text"], [{}], cfg, [])) == set(entry.impl.prediction_fields(cfg))
