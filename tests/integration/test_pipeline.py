"""train → eval → predict through the CLI, in-process, for every method on the tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftcli.cli.main import main
from ftcli.data.readers import read_rows
from ftcli.data.splits import sample_dir
from tests.integration.conftest import ADAPTER_METHODS, METHODS


def read_json(path: Path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("method", METHODS)
def test_run_directory_contract(trained_runs, method):
    run = trained_runs[method]
    artifact = "adapter" if method in ADAPTER_METHODS else "model"
    assert (run / "config.yaml").is_file() and (run / "train_log.jsonl").is_file()
    assert read_json(run / "labels.json") == {"labels": ["negative", "positive"]}
    metrics = read_json(run / "metrics.json")
    assert set(metrics) == {"validation", "train"}
    assert 0.0 <= metrics["validation"]["accuracy"] <= 1.0
    assert sum(map(sum, metrics["validation"]["confusion_matrix"])) == 32  # debug=smoke keeps 32 eval rows
    assert (run / artifact).is_dir() and not (run / ("model" if artifact == "adapter" else "adapter")).exists()
    assert (run / artifact / "tokenizer.json").is_file()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]
    assert any("eval" in r for r in log)
    costs = metrics["train"]
    assert costs["wall_seconds"] > 0 and costs["peak_rss_mb"] > 100
    weights = [p for p in (run / artifact).iterdir() if p.suffix == ".safetensors"]
    assert costs["artifact_mb"] == round(sum(p.stat().st_size for p in weights) / 1e6, 3) > 0


def test_lora_adapter_is_small_and_holds_the_head(trained_runs):
    from safetensors import safe_open

    adapter = trained_runs["lora"] / "adapter"
    weights = adapter / "adapter_model.safetensors"
    assert weights.stat().st_size < 5 * 1024 * 1024
    with safe_open(str(weights), "pt") as tensors:
        keys = list(tensors.keys())
    assert any("classifier" in k for k in keys) and any("lora_A" in k for k in keys)


@pytest.mark.parametrize("method", METHODS)
def test_eval_reproduces_training_metrics_exactly(trained_runs, tmp_path, method):
    run = trained_runs[method]
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path}"]) == 0
    assert read_json(tmp_path / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]


@pytest.mark.parametrize("method", METHODS)
def test_predict_agrees_with_eval(trained_runs, tmp_path, method):
    run = trained_runs[method]
    gold = read_rows(str(sample_dir("sentiment") / "validation.jsonl"), "x")[:32]
    source = tmp_path / "dev.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in gold))
    out = tmp_path / "preds.jsonl"
    assert main(["eval", f"run_dir={run}", f"data.validation_file={source}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", "prediction_prefix=pred_",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    predictions = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(predictions) == len(gold)
    assert [{k: p[k] for k in g} for p, g in zip(predictions, gold)] == gold  # input order and fields kept
    assert all(abs(sum(p["pred_probs"].values()) - 1) < 1e-4 for p in predictions)
    labels = ["negative", "positive"]
    matrix = [[0, 0], [0, 0]]
    for g, p in zip(gold, predictions):
        matrix[labels.index(g["label"])][labels.index(p["pred_label"])] += 1
    evaluated = read_json(tmp_path / "e" / "metrics.json")["validation"]
    assert evaluated["confusion_matrix"] == matrix
    assert evaluated["confusion_matrix"] == read_json(run / "metrics.json")["validation"]["confusion_matrix"]


@pytest.mark.parametrize("method", ["lora", "adapter", "prefix_tuning"])
def test_gpt2_classifier_trains_and_reloads(tmp_path, method):
    from tests.integration.conftest import train

    run = train(tmp_path / "run", "model=tiny_gpt2", f"method={method}")
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]


def test_predict_reads_txt_and_csv(trained_runs, tmp_path):
    run = trained_runs["lora"]
    txt = tmp_path / "in.txt"
    txt.write_text("great value\n\nawful service\n")  # the blank line is an input too: output lines match input lines
    csv_file = tmp_path / "in.csv"
    csv_file.write_text('id,body\n1,"great, really"\n2,awful\n')
    for source, extra in ((txt, []), (csv_file, ["text_column=body"])):
        out = tmp_path / f"{source.stem}-{source.suffix[1:]}.jsonl"
        assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", *extra,
                     f"hydra.run.dir={tmp_path / source.suffix[1:]}"]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == (3 if source == txt else 2) and all(r["label"] in ("negative", "positive") for r in rows)
    assert [r.get("empty", False) for r in map(json.loads, (tmp_path / "in-txt.jsonl").read_text().splitlines())] == [
        False, True, False]
    assert [r["id"] for r in map(json.loads, (tmp_path / "in-csv.jsonl").read_text().splitlines())] == ["1", "2"]


def test_same_seed_gives_same_metrics(trained_runs, tmp_path):
    from tests.integration.conftest import train

    again = train(tmp_path / "again", "method=lora")
    assert read_json(again / "metrics.json")["validation"] == read_json(trained_runs["lora"] / "metrics.json")["validation"]


def test_text_classification_on_own_csv_columns(tmp_path):
    from tests.integration.conftest import train

    rows = [("the striker scored twice", "sports"), ("shares fell sharply", "business"),
            ("a new phone chip", "technology")] * 6
    for name, part in (("train.csv", rows), ("dev.csv", rows[:6])):
        (tmp_path / name).write_text("body,topic\n" + "".join(f'"{t}",{y}\n' for t, y in part))
    run = train(tmp_path / "run", "task=text_classification", f"data.train_file={tmp_path / 'train.csv'}",
                f"data.validation_file={tmp_path / 'dev.csv'}", "data.text_column=body", "data.label_column=topic")
    assert read_json(run / "labels.json")["labels"] == ["business", "sports", "technology"]
    assert set(read_json(run / "metrics.json")["validation"]["f1_per_class"]) == {"business", "sports", "technology"}


def test_training_into_a_finished_run_is_refused(trained_runs):
    run = trained_runs["full"]
    before = (run / "metrics.json").read_text()
    assert main(["train", "model=tiny_bert", "debug=smoke", f"hydra.run.dir={run}"]) == 6
    assert (run / "metrics.json").read_text() == before


@pytest.mark.parametrize("metric", ["accuracy", "loss"])
def test_saved_model_is_the_best_evaluation(tmp_path, metric):
    from tests.integration.conftest import train

    run = train(tmp_path / "run", "method=lora", "trainer.max_steps=6", "trainer.eval_strategy=steps",
                "trainer.eval_steps=1", "trainer.lr=5e-2", f"trainer.metric_for_best={metric}")
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    evals = [r for r in log if "eval" in r]
    assert [r["step"] for r in evals] == [1, 2, 3, 4, 5, 6]
    metrics = read_json(run / "metrics.json")
    sign = 1 if metric == "accuracy" else -1  # loss: lower is better without being told
    best = max(evals, key=lambda r: sign * r["eval"][metric])  # first of equals wins, as in training
    assert metrics["train"]["best_step"] == best["step"]
    assert metrics["validation"] == best["eval"]


def test_early_stopping_after_patience(tmp_path):
    from tests.integration.conftest import train

    run = train(tmp_path / "run", "method=freeze", "trainer.max_steps=10", "trainer.eval_strategy=steps",
                "trainer.eval_steps=1", "trainer.lr=1e-12", "trainer.early_stopping_patience=2")
    train_metrics = read_json(run / "metrics.json")["train"]
    assert train_metrics["stopped_early"] is True
    assert (train_metrics["steps"], train_metrics["best_step"]) == (3, 1)


def test_gradient_accumulation_counts_optimiser_steps(tmp_path):
    from tests.integration.conftest import train

    run = train(tmp_path / "run", "trainer.grad_accum_steps=2", "trainer.max_steps=2")
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2]
    assert read_json(run / "metrics.json")["train"]["steps"] == 2


def test_test_split_is_scored_by_train_and_eval(tmp_path):
    from tests.integration.conftest import train

    test_file = sample_dir("sentiment") / "validation.jsonl"
    run = train(tmp_path / "run", "method=lora", f"data.test_file={test_file}")
    trained = read_json(run / "metrics.json")
    assert {"validation", "test"} <= set(trained)
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    evaluated = read_json(tmp_path / "e" / "metrics.json")
    assert evaluated == {"validation": trained["validation"], "test": trained["test"]}


def test_relative_paths_are_saved_absolute_so_eval_works_elsewhere(tmp_path, monkeypatch):
    from tests.integration.conftest import train

    data = tmp_path / "data"
    data.mkdir()
    rows = read_rows(str(sample_dir("sentiment") / "train.jsonl"), "x")[:40]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(data)
    run = train(tmp_path / "run", "method=freeze", "data.train_file=train.jsonl")
    assert f"train_file: {data / 'train.jsonl'}" in (run / "config.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]
