"""Sentence pairs, multi-label and regression through the CLI on the tiny BERT: train → eval → predict."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import train

TOPICS = [("the match ended in a draw after extra time", ["sports"]),
          ("the bank raised interest rates again", ["money"]),
          ("the minister's budget cuts taxes for clubs", ["money", "politics"]),
          ("parliament votes on the stadium funding", ["politics", "sports"]),
          ("a quiet afternoon in the park", [])]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_json(path):
    return json.loads(path.read_text())


def eval_matches_training(run, tmp_path):
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]


def predict(run, tmp_path, rows, *extra):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", *extra,
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_pair_classification_on_the_bundled_sample(tmp_path, method):
    run = train(tmp_path / "run", "task=pair_classification", f"method={method}")
    metrics = read_json(run / "metrics.json")
    assert set(read_json(run / "labels.json")["labels"]) == {"paraphrase", "not_paraphrase"}
    assert sum(map(sum, metrics["validation"]["confusion_matrix"])) == 32
    eval_matches_training(run, tmp_path)
    rows = [{"a": "The film was long.", "b": "The movie ran for hours."}]
    [prediction] = predict(run, tmp_path, rows, "text_column=a", "text_pair_column=b")
    assert prediction["label"] in ("paraphrase", "not_paraphrase") and prediction["a"] == rows[0]["a"]


def test_multi_label_trains_and_predicts_label_lists(tmp_path):
    data = write_jsonl(tmp_path / "topics.jsonl", [{"text": t, "label": y} for t, y in TOPICS * 8])
    run = train(tmp_path / "run", "task=text_classification", "task.problem=multi_label", "task.threshold=0.4",
                f"data.train_file={data}", f"data.validation_file={data}")
    assert read_json(run / "labels.json")["labels"] == ["money", "politics", "sports"]
    validation = read_json(run / "metrics.json")["validation"]
    assert {"exact_match", "f1_micro", "f1_macro", "f1_per_class"} <= set(validation)
    eval_matches_training(run, tmp_path)
    predictions = predict(run, tmp_path, [{"text": "rates and taxes"}, {"text": "a goal"}])
    for p in predictions:
        assert set(p["probs"]) == {"money", "politics", "sports"}
        assert p["labels"] == [name for name, v in p["probs"].items() if v >= 0.4]


def test_regression_trains_and_predicts_a_score(tmp_path):
    rows = [{"text": t, "label": float(len(t.split()))} for t, _ in TOPICS] * 8
    data = write_jsonl(tmp_path / "lengths.jsonl", rows)
    run = train(tmp_path / "run", "task=text_classification", "task.problem=regression",
                f"data.train_file={data}", f"data.validation_file={data}")
    assert read_json(run / "labels.json")["labels"] == ["score"]
    validation = read_json(run / "metrics.json")["validation"]
    assert {"mse", "rmse", "mae", "pearson", "spearman"} <= set(validation)
    assert validation["rmse"] == pytest.approx(validation["mse"] ** 0.5)
    eval_matches_training(run, tmp_path)
    [prediction] = predict(run, tmp_path, [{"text": "five words in this text"}])
    assert isinstance(prediction["score"], float)


def test_regression_with_a_word_label_names_the_record(tmp_path):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"text": "a", "label": 1.0}, {"text": "b", "label": "high"}] * 4)
    code = main(["train", "model=tiny_bert", "debug=smoke", "task.problem=regression", f"data.train_file={data}",
                 f"data.validation_file={data}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == 4
    assert not (tmp_path / "run" / "metrics.json").exists()
