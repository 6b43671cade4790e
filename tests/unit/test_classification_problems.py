"""Sentence pairs, multi-label and regression in ftcli.tasks.classification, and their metrics."""

from __future__ import annotations

import numpy as np
import pytest

from ftcli.config.schema import DataConfig
from ftcli.data.splits import Splits
from ftcli.engine.inference import Outputs
from ftcli.errors import DataError
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig, PairClassificationConfig, Problem
from ftcli.tasks.metrics import multilabel_metrics, regression_metrics

MULTI = ClassificationConfig(problem=Problem.multi_label)
REGRESSION = ClassificationConfig(problem=Problem.regression)
CLASSIFY = TASKS.get("text_classification").impl
PAIRS = TASKS.get("pair_classification").impl


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def splits_of(labels):
    return Splits(rows={"train": [{"text": f"t{i}", "label": v} for i, v in enumerate(labels)]},
                  sources={"train": "train.jsonl"})


def test_pair_rows_are_encoded_as_one_sequence_with_two_segments(tokenizer):
    rows = [{"text": "a cat sat", "text_pair": "a dog ran", "label": "no"}]
    [feature] = PAIRS.bind(PairClassificationConfig(), DataConfig(), ["no", "yes"], tokenizer).encode(rows, "x.jsonl")
    assert feature["input_ids"] == tokenizer("a cat sat", "a dog ran")["input_ids"]
    assert feature["input_ids"].count(tokenizer.sep_token_id) == 2 and set(feature["token_type_ids"]) == {0, 1}
    assert feature["labels"] == 0


def test_pair_rows_need_the_second_text(tokenizer):
    rows = [{"text": "a cat sat", "label": "no"}]
    with pytest.raises(DataError, match="text_pair"):
        PAIRS.bind(PairClassificationConfig(), DataConfig(), ["no"], tokenizer).encode(rows, "x.jsonl")
    with pytest.raises(DataError, match=r"record 0: 'text_pair' is int, not text"):
        PAIRS.bind(PairClassificationConfig(), DataConfig(), ["no"], tokenizer).encode(
            [{"text": "a", "text_pair": 3, "label": "no"}], "x.jsonl"
        )


def test_multi_label_names_are_the_union_and_targets_are_multi_hot(tokenizer):
    splits = splits_of([["sports", "money"], [], ["politics"], "sports"])
    labels = CLASSIFY.label_names(splits, MULTI, DataConfig())
    assert labels == ["money", "politics", "sports"]
    features = CLASSIFY.bind(MULTI, DataConfig(), labels, tokenizer).encode(splits["train"], "train.jsonl")
    assert [f["labels"] for f in features] == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert CLASSIFY.model_config(MULTI, None) == {"problem_type": "multi_label_classification"}
    assert CLASSIFY.best_metric(MULTI) == "f1_micro"


def test_multi_label_rejects_an_unknown_label_and_a_non_list(tokenizer):
    with pytest.raises(DataError, match=r"record 1 has label 'art'"):
        CLASSIFY.bind(MULTI, DataConfig(), ["sports"], tokenizer).encode(splits_of([["sports"], ["art"]])["train"], "f")
    with pytest.raises(DataError, match=r"record 0 has labels 1.5; task.problem=multi_label needs a list"):
        CLASSIFY.label_names(splits_of([1.5]), MULTI, DataConfig())


def test_multi_label_predictions_use_the_threshold():
    logits = np.array([[2.0, -2.0, 0.1], [-3.0, -3.0, -3.0]])
    task = CLASSIFY.bind(ClassificationConfig(problem=Problem.multi_label, threshold=0.5), DataConfig(),
                         ["a", "b", "c"], None)
    preds = task.predictions(Outputs(logits, None), [{}, {}])
    assert [p["labels"] for p in preds] == [["a", "c"], []]
    assert preds[0]["probs"]["a"] == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-6)


def test_multi_label_metrics_by_hand():
    # gold:      [1,0,1] [0,1,0]   predicted: [1,0,0] [0,1,1]
    # class a: tp1; class b: tp1; class c: fn1 (row 0) and fp1 (row 1)
    # micro: tp=2, fp=1, fn=1 -> P = R = F1 = 2/3; exact match: neither row -> 0
    # macro F1: a=1, b=1, c=0 -> 2/3
    scores = multilabel_metrics(np.array([[1, 0, 0], [0, 1, 1]]), np.array([[1, 0, 1], [0, 1, 0]]), ["a", "b", "c"])
    assert scores["exact_match"] == 0.0
    assert scores["precision_micro"] == pytest.approx(2 / 3) and scores["recall_micro"] == pytest.approx(2 / 3)
    assert scores["f1_micro"] == pytest.approx(2 / 3) and scores["f1_macro"] == pytest.approx(2 / 3)
    assert scores["f1_per_class"] == {"a": 1.0, "b": 1.0, "c": 0.0}


def test_regression_targets_are_numbers_and_bad_ones_name_the_record(tokenizer):
    rows = splits_of([0.5, "3", 2])["train"]
    assert CLASSIFY.label_names(splits_of([0.5]), REGRESSION, DataConfig()) == ["score"]
    features = CLASSIFY.bind(REGRESSION, DataConfig(), ["score"], tokenizer).encode(rows, "f")
    assert [f["labels"] for f in features] == [0.5, 3.0, 2.0]
    for bad in ("high", None, float("nan"), True):
        with pytest.raises(DataError, match=r"record 1 has label=.*needs a finite number"):
            CLASSIFY.bind(REGRESSION, DataConfig(), ["score"], tokenizer).encode(splits_of([1.0, bad])["train"], "f")
    assert CLASSIFY.model_config(REGRESSION, None) == {"problem_type": "regression"}


def test_regression_metrics_by_hand():
    # predictions 1,2,3 against 2,4,6: errors 1,2,3 -> MSE (1+4+9)/3 = 14/3, MAE 2;
    # the predictions are an exact linear function of the references -> Pearson = Spearman = 1
    scores = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))
    assert scores["mse"] == pytest.approx(14 / 3) and scores["rmse"] == pytest.approx((14 / 3) ** 0.5)
    assert scores["mae"] == pytest.approx(2.0)
    assert scores["pearson"] == pytest.approx(1.0) and scores["spearman"] == pytest.approx(1.0)
    assert regression_metrics(np.array([1.0, 1.0]), np.array([0.0, 2.0]))["pearson"] == 0.0  # constant: undefined


def test_regression_predictions_are_the_score():
    task = CLASSIFY.bind(REGRESSION, DataConfig(), ["score"], None)
    preds = task.predictions(Outputs(np.array([[0.25], [-1.5]]), None), [{}, {}])
    assert preds == [{"score": 0.25}, {"score": -1.5}]


def test_one_label_in_training_data_is_a_data_error():
    with pytest.raises(DataError, match=r"every training row has the label 'x'.*needs at least two labels"):
        CLASSIFY.label_names(splits_of(["x", "x"]), ClassificationConfig(), DataConfig())
    assert CLASSIFY.label_names(splits_of(["x"]), ClassificationConfig(), DataConfig(label_names=["x", "y"])) == ["x", "y"]
