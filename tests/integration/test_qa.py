"""task=qa through the CLI on the tiny BERT: train → eval → predict over context windows, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftcli.cli.main import main
from ftcli.data.readers import read_rows
from ftcli.data.splits import sample_dir
from ftcli.errors import EXIT_DATA, EXIT_MODEL
from ftcli.tasks.metrics import squad_metrics
from tests.integration.conftest import train

QA_METHODS = ["full", "lora"]
# Windows of 64 tokens with a 16-token stride: most bundled paragraphs need two or three.
WINDOWS = ["task=qa", "task.max_length=64", "task.doc_stride=16"]


def read_json(path: Path):
    return json.loads(path.read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def gold_rows(n: int = 32) -> list[dict]:
    return read_rows(str(sample_dir("qa") / "validation.jsonl"), "x")[:n]


@pytest.fixture(scope="session")
def qa_runs(tmp_path_factory) -> dict[str, Path]:
    """One finished tiny QA run per method on the bundled sample."""
    root = tmp_path_factory.mktemp("qa_runs")
    return {method: train(root / method, *WINDOWS, f"method={method}") for method in QA_METHODS}


@pytest.mark.parametrize("method", QA_METHODS)
def test_run_directory_holds_squad_scores(qa_runs, method):
    run = qa_runs[method]
    assert read_json(run / "labels.json") == {"labels": ["start", "end"]}
    validation = read_json(run / "metrics.json")["validation"]
    assert validation["total"] == 32  # rows, not windows
    assert validation["HasAns_total"] + validation["NoAns_total"] == 32  # the sample has unanswerable questions
    assert all(0.0 <= validation[k] <= 1.0 for k in ("exact_match", "f1", "HasAns_f1", "NoAns_f1"))
    assert "metric_for_best: f1" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("method", QA_METHODS)
def test_eval_reproduces_training_metrics_exactly(qa_runs, tmp_path, method):
    run = qa_runs[method]
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path}"]) == 0
    assert read_json(tmp_path / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]


@pytest.mark.parametrize("method", QA_METHODS)
def test_predict_gives_one_answer_per_row_whose_offsets_slice_the_context(qa_runs, tmp_path, method):
    gold = gold_rows()
    source = write_jsonl(tmp_path / "in.jsonl", [{k: row[k] for k in ("id", "question", "context")} for row in gold])
    out = tmp_path / "preds.jsonl"
    assert main(["predict", f"run_dir={qa_runs[method]}", f"input={source}", f"output={out}",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    predictions = read_jsonl(out)
    assert [p["id"] for p in predictions] == [row["id"] for row in gold]  # one line per row, in input order
    spans = 0
    for prediction in predictions:
        assert 0.0 <= prediction["score"] <= 1.0
        if prediction["start"] is None:
            assert prediction["answer"] == "" and prediction["end"] is None
        else:
            assert prediction["context"][prediction["start"]:prediction["end"]] == prediction["answer"] != ""
            spans += 1
    assert spans > 0  # the offsets were checked on real spans
    # predict and training's evaluation read the same windows the same way
    scores = squad_metrics([p["answer"] for p in predictions], [row["answers"]["text"] for row in gold])
    validation = read_json(qa_runs[method] / "metrics.json")["validation"]
    assert scores == {k: v for k, v in validation.items() if k != "loss"}


def test_an_answer_not_at_its_answer_start_is_a_data_error(tmp_path, capsys):
    rows = read_rows(str(sample_dir("qa") / "train.jsonl"), "x")[:8]
    answerable = next(i for i, row in enumerate(rows) if row["answers"]["text"])
    rows[answerable]["answers"]["answer_start"][0] += 1
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    code = main(["train", "model=tiny_bert", "debug=smoke", "task=qa", "method=full", f"data.train_file={path}",
                 f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == EXIT_DATA
    panel = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert f"record {answerable}" in panel and "is not at answer_start" in panel and "train.jsonl" in panel


def test_input_prompt_methods_are_refused_with_an_alternative(tmp_path, capsys):
    code = main(["train", "model=tiny_bert", "debug=smoke", "task=qa", "method=prompt_tuning",
                 f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == EXIT_MODEL
    panel = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "method=prompt_tuning cannot find answer spans" in panel and "prefix_tuning" in panel


def test_export_merges_a_lora_run_into_a_plain_question_answering_model(qa_runs, tmp_path):
    from transformers import AutoModelForQuestionAnswering

    target = tmp_path / "model"
    assert main(["export", f"run_dir={qa_runs['lora']}", f"output={target}", "merge=true",
                 f"hydra.run.dir={tmp_path / 'x'}"]) == 0
    card = (target / "README.md").read_text()
    assert "pipeline_tag: question-answering" in card and "# qa question-answering model (lora)" in card
    model = AutoModelForQuestionAnswering.from_pretrained(target)
    assert model.config.num_labels == 2
