"""Few-shot training sets (`ftcli.data.shots`, `data.shots_per_class`): exactly k rows of each class,
seeded, drawn after the validation split is carved."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ftcli.config.schema import DataConfig
from ftcli.data.shots import shots_per_class
from ftcli.data.splits import load_splits
from ftcli.errors import DataError

ROWS = [{"text": f"row {i}", "label": label} for i, label in enumerate(["a"] * 50 + ["b"] * 30 + [2] * 20)]


def test_exactly_k_rows_of_every_class_in_their_order():
    drawn = shots_per_class(ROWS, "label", 4, seed=0)
    assert Counter(str(row["label"]) for row in drawn) == {"a": 4, "b": 4, "2": 4}
    positions = [ROWS.index(row) for row in drawn]
    assert positions == sorted(positions) and len(set(positions)) == 12


def test_the_draw_is_seeded():
    assert shots_per_class(ROWS, "label", 4, seed=0) == shots_per_class(ROWS, "label", 4, seed=0)
    assert shots_per_class(ROWS, "label", 4, seed=0) != shots_per_class(ROWS, "label", 4, seed=1)


def test_a_classs_draw_does_not_depend_on_the_other_classes():
    without_b = [row for row in ROWS if row["label"] != "b"]
    kept = [row for row in shots_per_class(ROWS, "label", 3, seed=7) if row["label"] != "b"]
    assert shots_per_class(without_b, "label", 3, seed=7) == kept


def test_integer_labels_and_their_digits_are_one_class():
    rows = [{"label": 1}, {"label": "1"}, {"label": 1.0}, {"label": "x"}, {"label": "x"}, {"label": "x"}]
    assert shots_per_class(rows, "label", 3, seed=0) == rows  # three of class "1", three of "x"


def test_named_labels_are_classes_even_without_rows_and_integers_index_them():
    rows = [{"label": 0}, {"label": "neg"}, {"label": 1}, {"label": "pos"}]
    assert shots_per_class(rows, "label", 2, seed=0, label_names=["neg", "pos"]) == rows
    with pytest.raises(DataError, match="'neutral' has 0"):
        shots_per_class(rows, "label", 2, seed=0, label_names=["neg", "pos", "neutral"])


def test_a_class_with_fewer_rows_than_k_is_an_error_naming_it_its_count_and_the_fix():
    with pytest.raises(DataError) as error:
        shots_per_class(ROWS, "label", 25, seed=0, source="train.jsonl")
    assert error.value.message == (
        "data.shots_per_class=25: train.jsonl has fewer than 25 rows of 1 class(es): '2' has 20")
    assert error.value.hint == "set data.shots_per_class=20 or less, or add rows of those classes"
    with pytest.raises(DataError, match="'2' has 20, 'b' has 30"):
        shots_per_class(ROWS, "label", 40, seed=0)


def test_a_row_without_a_single_label_is_an_error_naming_the_record():
    with pytest.raises(DataError, match="record 1 has label=\\['a'\\], not a single label"):
        shots_per_class([{"label": "a"}, {"label": ["a"]}], "label", 1, seed=0)
    with pytest.raises(DataError, match="record 0 has no 'class' column"):
        shots_per_class([{"label": "a"}], "class", 1, seed=0)


def test_validation_is_the_same_with_or_without_shots(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    plain = load_splits(DataConfig(train_file=str(train), validation_ratio=0.2), "sentiment", 3, training=True)
    drawn = DataConfig(train_file=str(train), validation_ratio=0.2, shots_per_class=2, max_train_samples=60)
    shots = load_splits(drawn, "sentiment", 3, training=True)
    assert json.dumps(shots["validation"]) == json.dumps(plain["validation"]) and len(plain["validation"]) == 20
    pool = plain["train"][:60]  # max_train_samples first: the shots come from the rows it keeps
    assert all(row in pool for row in shots["train"]) and len(shots["train"]) == 2 * len({r["label"] for r in pool})
    assert shots.shots is not None and (shots.shots.pool, shots.shots.rows) == (60, len(shots["train"]))
    assert shots.sources["train"].endswith("(2 per class, seed 3)")
    evaluation = load_splits(DataConfig(train_file=str(train), validation_ratio=0.2, shots_per_class=2), "sentiment", 3,
                             training=False)
    assert json.dumps(evaluation["validation"]) == json.dumps(plain["validation"]) and "train" not in evaluation
