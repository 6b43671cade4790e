"""Tests of ftcli.data.splits: loading splits from files and bundled samples, carving, truncation, columns."""

from __future__ import annotations

import json

import pytest

from ftcli.config.schema import DataConfig
from ftcli.data.splits import load_splits, require_columns
from ftcli.errors import DataError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def numbered(n: int, prefix: str = "t"):
    return [{"text": f"{prefix}{i}", "label": "pos" if i % 2 else "neg"} for i in range(n)]


@pytest.fixture
def train_file(tmp_path):
    return write_jsonl(tmp_path / "train.jsonl", numbered(50))


def test_train_and_validation_files(tmp_path, train_file):
    validation = write_jsonl(tmp_path / "val.jsonl", numbered(7, "v"))
    splits = load_splits(DataConfig(train_file=train_file, validation_file=validation), "sentiment", 0, training=True)
    assert set(splits.rows) == {"train", "validation"}
    assert splits["train"] == numbered(50)
    assert splits["validation"] == numbered(7, "v")
    assert splits.sources == {"train": train_file, "validation": validation}
    assert "test" not in splits


def test_test_file_is_loaded(tmp_path, train_file):
    test = write_jsonl(tmp_path / "test.jsonl", numbered(3, "x"))
    splits = load_splits(DataConfig(train_file=train_file, test_file=test), "sentiment", 0, training=True)
    assert splits["test"] == numbered(3, "x")


def carve(train_file, seed, ratio=0.2):
    return load_splits(DataConfig(train_file=train_file, validation_ratio=ratio), "sentiment", seed, training=True)


def test_validation_is_carved_from_train(train_file):
    splits = carve(train_file, seed=1)
    assert len(splits["validation"]) == 10
    assert len(splits["train"]) == 40
    train_texts = {row["text"] for row in splits["train"]}
    val_texts = {row["text"] for row in splits["validation"]}
    assert train_texts.isdisjoint(val_texts)
    assert train_texts | val_texts == {f"t{i}" for i in range(50)}
    assert splits.sources["validation"] == f"{train_file} (held out 20%, seed 1)"


def test_carving_keeps_file_order_within_each_split(train_file):
    splits = carve(train_file, seed=1)
    for split in ("train", "validation"):
        indices = [int(row["text"][1:]) for row in splits[split]]
        assert indices == sorted(indices)


def test_carving_is_deterministic_per_seed(train_file):
    assert carve(train_file, seed=7).rows == carve(train_file, seed=7).rows
    assert carve(train_file, seed=7)["validation"] != carve(train_file, seed=8)["validation"]


def test_carving_rounds_and_keeps_at_least_one_row(tmp_path):
    path = write_jsonl(tmp_path / "small.jsonl", numbered(5))
    assert len(carve(path, seed=0, ratio=0.1)["validation"]) == 1  # round(0.5) == 0, raised to 1
    assert len(carve(path, seed=0, ratio=0.5)["validation"]) == 2  # round(2.5) == 2 (banker's rounding)


def test_carving_from_one_row_fails(tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", numbered(1))
    with pytest.raises(DataError, match=r"cannot carve a validation split from 1 training row\(s\)"):
        carve(path, seed=0)


@pytest.mark.parametrize(
    ("task", "n_train", "n_val", "labels"),
    [
        ("sentiment", 400, 100, {"negative", "positive"}),
        ("text_classification", 240, 60, {"business", "science", "sports", "technology"}),
    ],
)
def test_bundled_sample(task, n_train, n_val, labels):
    splits = load_splits(DataConfig(), task, 42, training=True)
    assert (len(splits["train"]), len(splits["validation"])) == (n_train, n_val)
    for split in ("train", "validation"):
        assert all(set(row) == {"text", "label"} for row in splits[split])
        assert {row["label"] for row in splits[split]} == labels
    assert splits.sources["train"].endswith(f"samples/{task}/" + ("train.jsonl" if task == "sentiment" else "train.csv"))


def test_bundled_sample_is_not_used_when_train_file_given(train_file):
    splits = carve(train_file, seed=0)
    assert splits.sources["train"] == train_file


def test_max_samples_truncate_in_order(tmp_path, train_file):
    validation = write_jsonl(tmp_path / "val.jsonl", numbered(9, "v"))
    test = write_jsonl(tmp_path / "test.jsonl", numbered(9, "x"))
    cfg = DataConfig(
        train_file=train_file, validation_file=validation, test_file=test, max_train_samples=5, max_eval_samples=3
    )
    splits = load_splits(cfg, "sentiment", 0, training=True)
    assert splits["train"] == numbered(5)
    assert splits["validation"] == numbered(3, "v")
    assert splits["test"] == numbered(3, "x")


def test_max_samples_larger_than_split_keeps_all(train_file):
    cfg = DataConfig(train_file=train_file, max_train_samples=1000, validation_ratio=0.2)
    assert len(load_splits(cfg, "sentiment", 0, training=True)["train"]) == 40


def test_empty_validation_file(tmp_path, train_file):
    empty = tmp_path / "val.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"the validation split \\({empty}\\) is empty"):
        load_splits(DataConfig(train_file=train_file, validation_file=str(empty)), "sentiment", 0, training=True)


def test_empty_train_file(tmp_path):
    empty = tmp_path / "train.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"train split .* is empty"):
        load_splits(DataConfig(train_file=str(empty)), "sentiment", 0, training=True)


def test_not_training_drops_train_keeps_carved_validation(train_file):
    cfg = DataConfig(train_file=train_file, validation_ratio=0.2)
    evaluated = load_splits(cfg, "sentiment", 3, training=False)
    assert set(evaluated.rows) == {"validation"}
    assert evaluated["validation"] == load_splits(cfg, "sentiment", 3, training=True)["validation"]


def test_only_validation_file_without_sample(tmp_path):
    validation = write_jsonl(tmp_path / "val.jsonl", numbered(4, "v"))
    cfg = DataConfig(validation_file=validation)
    splits = load_splits(cfg, "sentiment", 0, training=False, use_sample=False)
    assert splits.rows == {"validation": numbered(4, "v")}
    with pytest.raises(DataError, match="no training data"):
        load_splits(cfg, "sentiment", 0, training=True, use_sample=False)


def test_nothing_to_evaluate():
    with pytest.raises(DataError, match="nothing to evaluate"):
        load_splits(DataConfig(), "sentiment", 0, training=False, use_sample=False)


def test_require_columns_lists_columns_found():
    rows = [{"sentence": "a", "label": 1}]
    with pytest.raises(DataError) as info:
        require_columns(rows, {"data.text_column": "text"}, "train.jsonl")
    assert info.value.message == "data.text_column='text' is not a column of train.jsonl; columns found: sentence, label"
    assert info.value.hint == "set data.text_column=<one of those>"


def test_require_columns_names_record_missing_a_field():
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c"}]
    with pytest.raises(DataError, match=r"^train.jsonl: record 2 has no 'label' field \(data.label_column\)$"):
        require_columns(rows, {"data.text_column": "text", "data.label_column": "label"}, "train.jsonl")


def test_require_columns_passes():
    require_columns([{"text": "a", "label": 1}], {"data.text_column": "text", "data.label_column": "label"}, "f")


def test_dataset_folder_loads_through_datasets(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(f'{{"text": "t{i}", "label": "a"}}\n' for i in range(5)))
    (folder / "validation.jsonl").write_text('{"text": "v", "label": "a"}\n')
    splits = load_splits(DataConfig(dataset=str(folder)), "sentiment", 0, training=True)
    assert {k: len(v) for k, v in splits.rows.items()} == {"train": 5, "validation": 1}
    assert splits["validation"] == [{"text": "v", "label": "a"}]


def test_unknown_dataset_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="could not be loaded") as info:
        load_splits(DataConfig(dataset=str(tmp_path / "missing")), "sentiment", 0, training=True)
    assert "data.train_file" in info.value.hint
