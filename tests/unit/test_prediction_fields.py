"""Every task's `prediction_fields` names every field its `predictions` return, so `predict` can
refuse an input that holds one before the model runs."""

from __future__ import annotations

import numpy as np
import pytest

from ftcli.config.schema import DataConfig
from ftcli.engine.inference import Outputs
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig, Problem, SequenceClassification
from ftcli.tasks.generating import Generated


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def fields_of(predictions: list[dict]) -> set[str]:
    return {name for prediction in predictions for name in prediction}


def test_every_task_that_predict_runs_declares_its_fields(tokenizer):
    for name in TASKS.names():
        entry = TASKS.get(name)
        if name != "prompting":  # eval only: it has no run directory to predict with
            assert entry.impl.bind(entry.config_cls(), DataConfig(), [], tokenizer).prediction_fields(), name


def test_every_task_declares_whether_it_generates(tokenizer):
    generating = {"summarization", "translation", "instruction", "preference", "kto", "grpo", "feedback"}
    for name in TASKS.names():
        entry = TASKS.get(name)
        if name != "prompting":
            generation = entry.impl.bind(entry.config_cls(), DataConfig(), [], tokenizer).generation
            assert (generation is not None) == (name in generating), name
            if generation is not None:
                assert generation == entry.config_cls().generation


@pytest.mark.parametrize("problem", list(Problem))
def test_classification(problem):
    labels = ["score"] if problem is Problem.regression else ["a", "b"]
    task = SequenceClassification().bind(ClassificationConfig(problem=problem), DataConfig(), labels, None)
    predictions = task.predictions(Outputs(np.zeros((2, len(labels))), None), [{}, {}])
    assert fields_of(predictions) == set(task.prediction_fields())


def test_ner_words_and_raw_text(tokenizer):
    entry = TASKS.get("ner")
    labels = ["O", "B-PER", "I-PER"]
    task = entry.impl.bind(entry.config_cls(), DataConfig(), labels, tokenizer)
    features = task.encode([{"tokens": ["Ada", "sang"]}, {"text": "Ada sang"}], "f", with_labels=False)
    logits = [np.zeros((len(f["input_ids"]), len(labels))) for f in features]
    assert fields_of(task.predictions(Outputs(logits, None), features)) == set(task.prediction_fields())


def test_qa(tokenizer):
    entry = TASKS.get("qa")
    task = entry.impl.bind(entry.config_cls(), DataConfig(), ["start", "end"], tokenizer)
    features = task.encode([{"question": "Who?", "context": "Ada sang."}], "f", with_labels=False)
    logits = [np.zeros((len(f["input_ids"]), 2)) for f in features]
    assert fields_of(task.predictions(Outputs(logits, None), features)) == set(task.prediction_fields())


@pytest.mark.parametrize("name", ["summarization", "translation", "instruction"])
def test_generation(name, tokenizer):
    entry = TASKS.get(name)
    task = entry.impl.bind(entry.config_cls(), DataConfig(), [], tokenizer)
    assert fields_of(task.predictions(Generated(["a text"], None), [{}])) == set(task.prediction_fields())


def test_grpo(tokenizer):
    entry = TASKS.get("grpo")
    task = entry.impl.bind(entry.config_cls(), DataConfig(), [], tokenizer)
    features = task.encode([{"prompt": "2 + 2?", "answer": "#### 4"}], "f", with_labels=False)
    assert fields_of(task.predictions(Generated(["#### 4"], None), features)) == set(task.prediction_fields())
