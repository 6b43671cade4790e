"""Tests of ftcli.tasks.classification: label sets, encoding labels and texts, and predictions."""

from __future__ import annotations

import numpy as np
import pytest

from ftcli.config.schema import DataConfig
from ftcli.data.readers import read_rows
from ftcli.data.splits import Splits
from ftcli.engine.inference import Outputs
from ftcli.errors import DataError
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig, SequenceClassification
from ftcli.tasks.notes import NOTE, RowNote

TASK = SequenceClassification()
CONFIG = ClassificationConfig()


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def splits_of(labels, source="train.jsonl"):
    return Splits(rows={"train": [{"text": f"t{i}", "label": v} for i, v in enumerate(labels)]}, sources={"train": source})


def test_both_tasks_are_registered_with_the_classification_schema():
    for name in ("sentiment", "text_classification"):
        entry = TASKS.get(name)
        assert entry.config_cls is ClassificationConfig
        assert isinstance(entry.impl, SequenceClassification)


def test_label_names_from_strings_are_sorted():
    assert TASK.label_names(splits_of(["pos", "neg", "neutral", "pos"]), CONFIG, DataConfig()) == ["neg", "neutral", "pos"]


def test_label_names_from_integers_in_numeric_order():
    assert TASK.label_names(splits_of([10, 2, 0, 2, 1]), CONFIG, DataConfig()) == ["0", "1", "2", "10"]


def test_label_names_from_numeric_strings_of_a_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\na,10\nb,2\nc,-1\nd,2\n", encoding="utf-8")
    splits = Splits(rows={"train": read_rows(str(path), "data.train_file")}, sources={"train": str(path)})
    assert TASK.label_names(splits, CONFIG, DataConfig()) == ["-1", "2", "10"]


def test_label_names_configured_win_over_data():
    data = DataConfig(label_names=["pos", "neg"])
    assert TASK.label_names(splits_of(["neg", "other"]), CONFIG, data) == ["pos", "neg"]


def test_label_names_missing_label_column():
    with pytest.raises(DataError, match="data.label_column='y' is not a column of train.jsonl; columns found: text, label"):
        TASK.label_names(splits_of(["a"]), CONFIG, DataConfig(label_column="y"))


def encode(rows, tokenizer, labels, data=None, **kwargs):
    bound = TASK.bind(ClassificationConfig(max_length=8), data or DataConfig(), labels, tokenizer)
    return bound.encode(rows, "f.jsonl", **kwargs)


def test_encode_maps_labels_and_tokenizes(tokenizer):
    rows = [{"text": "good movie", "label": "pos"}, {"text": "bad", "label": "neg"}]
    features = encode(rows, tokenizer, ["neg", "pos"])
    assert [f["labels"] for f in features] == [1, 0]
    assert features[0]["input_ids"] == tokenizer("good movie")["input_ids"]
    assert set(features[0]) == {"input_ids", "token_type_ids", "attention_mask", "labels", NOTE}
    collate = TASK.bind(CONFIG, DataConfig(), ["neg", "pos"], tokenizer).collator()
    assert set(collate(features)) == {"input_ids", "token_type_ids", "attention_mask", "labels"}


def test_encode_truncates_to_max_length(tokenizer):
    features = encode([{"text": "word " * 50, "label": "a"}], tokenizer, ["a"])
    assert len(features[0]["input_ids"]) == 8


def test_encode_notes_which_rows_were_cut_or_empty(tokenizer):
    """Six words and [CLS]/[SEP] are exactly 8 tokens, not cut; seven are."""
    rows = [{"text": "a b c d e f"}, {"text": "a b c d e f g"}, {"text": ""}, {"text": " \t "}]
    notes = [f[NOTE] for f in encode(rows, tokenizer, ["a"], with_labels=False)]
    assert notes == [RowNote(0), RowNote(1, cut=True), RowNote(2, empty=True), RowNote(3, empty=True)]


def test_pairs_are_cut_or_empty_when_either_text_is():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path
    from ftcli.tasks.classification import PairClassificationConfig

    rows = [{"text": "a b", "text_pair": "c"}, {"text": "a b c d", "text_pair": "e f g"}, {"text": "a", "text_pair": " "}]
    features = SequenceClassification(pairs=True).bind(
        PairClassificationConfig(max_length=8), DataConfig(), ["a"], AutoTokenizer.from_pretrained(embedded_tokenizer_path())
    ).encode(rows, "f.jsonl", with_labels=False)
    assert [(f[NOTE].cut, f[NOTE].empty) for f in features] == [(False, False), (True, False), (False, True)]


def test_encode_integer_labels(tokenizer):
    rows = [{"text": "a", "label": 10}, {"text": "b", "label": "2"}, {"text": "c", "label": True}]
    assert [f["labels"] for f in encode(rows, tokenizer, ["1", "2", "10"])] == [2, 1, 0]


def test_encode_integer_labels_index_into_configured_names(tokenizer):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c", "label": "positive"}]
    data = DataConfig(label_names=["negative", "positive"])
    assert [f["labels"] for f in encode(rows, tokenizer, ["negative", "positive"], data)] == [1, 0, 1]


def test_encode_integer_labels_do_not_index_into_names_from_data(tokenizer):
    with pytest.raises(DataError, match="record 0 has label 1"):
        encode([{"text": "a", "label": 1}], tokenizer, ["negative", "positive"])


def test_encode_unknown_label_names_record_index(tokenizer):
    rows = [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}, {"text": "c", "label": "meh"}]
    with pytest.raises(DataError) as info:
        encode(rows, tokenizer, ["neg", "pos"])
    assert info.value.message == "f.jsonl: record 2 has label 'meh', which is not in the label set ['neg', 'pos']"


def test_encode_out_of_range_integer_with_configured_names(tokenizer):
    data = DataConfig(label_names=["negative", "positive"])
    with pytest.raises(DataError, match="record 1 has label 2"):
        encode([{"text": "a", "label": 0}, {"text": "b", "label": 2}], tokenizer, ["negative", "positive"], data)


def test_encode_non_text_names_record(tokenizer):
    with pytest.raises(DataError, match="f.jsonl: record 1: 'text' is int, not text"):
        encode([{"text": "a", "label": "x"}, {"text": 5, "label": "x"}], tokenizer, ["x"])


def test_encode_without_labels_needs_no_label_column(tokenizer):
    features = encode([{"text": "a"}], tokenizer, ["x"], with_labels=False)
    assert "labels" not in features[0]


def test_float_integer_labels_round_trip(tokenizer):
    splits = splits_of([0.0, 1.0, 1.0])
    labels = TASK.label_names(splits, CONFIG, DataConfig())
    assert [f["labels"] for f in encode(splits["train"], tokenizer, labels)] == [0, 1, 1]


def test_zero_padded_numeric_labels_round_trip(tokenizer):
    splits = splits_of(["01", "02", "01"])
    labels = TASK.label_names(splits, CONFIG, DataConfig())
    assert [f["labels"] for f in encode(splits["train"], tokenizer, labels)] == [0, 1, 0]


def test_predictions_probs_and_argmax():
    logits = np.array([[1.0, 3.0, 0.0], [1000.0, 0.0, 0.0]])
    preds = TASK.bind(CONFIG, DataConfig(), ["a", "b", "c"], None).predictions(Outputs(logits, None), [{}, {}])
    assert [p["label"] for p in preds] == ["b", "a"]
    for p in preds:
        assert list(p["probs"]) == ["a", "b", "c"]
        assert sum(p["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    expected = np.exp([1.0, 3.0, 0.0]) / np.exp([1.0, 3.0, 0.0]).sum()
    assert preds[0]["probs"] == pytest.approx(dict(zip("abc", expected)), abs=1e-6)
    assert preds[1]["probs"] == {"a": 1.0, "b": 0.0, "c": 0.0}  # no overflow for large logits


def test_metrics_take_argmax_of_logits():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    features = [{"labels": 1}, {"labels": 0}, {"labels": 0}]
    result = TASK.bind(CONFIG, DataConfig(), ["neg", "pos"], None).metrics(logits, features)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["confusion_matrix"] == [[1, 1], [0, 1]]
