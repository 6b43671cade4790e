"""task=ner through the CLI on the tiny BERT: train → eval → predict, CoNLL files, export, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftcli.cli.main import main
from ftcli.data.readers import read_rows
from ftcli.data.splits import sample_dir
from ftcli.errors import EXIT_DATA, EXIT_MODEL
from ftcli.tasks.metrics import entity_metrics
from tests.integration.conftest import train

NER_METHODS = ["full", "lora", "adapter", "prefix_tuning"]
LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
TYPES = ["LOC", "MISC", "ORG", "PER"]
TEXTS = [
    "Grace Adeyemi flew from Lisbon to Nairobi on Monday.",
    "Shares of Kestrel Motors fell after the Zürich meeting, said Ms Okafor.",
    "The Norwegian team won the World Cup final in São Paulo!",
    "  Leading and trailing spaces, and  double  spaces, stay where they are.  ",
]


def read_json(path: Path):
    return json.loads(path.read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def panel_text(capsys) -> str:
    """What the error panel on stderr says, with its border and line wrapping removed."""
    return " ".join(capsys.readouterr().err.replace("│", " ").split())


def gold_rows(n: int = 32) -> list[dict]:
    return read_rows(str(sample_dir("ner") / "validation.jsonl"), "x")[:n]


@pytest.fixture(scope="session")
def ner_runs(tmp_path_factory) -> dict[str, Path]:
    """One finished tiny NER run per method on the bundled sample."""
    root = tmp_path_factory.mktemp("ner_runs")
    return {method: train(root / method, "task=ner", f"method={method}") for method in NER_METHODS}


@pytest.mark.parametrize("method", NER_METHODS)
def test_run_directory_holds_iob2_labels_and_entity_scores(ner_runs, method):
    run = ner_runs[method]
    assert read_json(run / "labels.json") == {"labels": LABELS}
    validation = read_json(run / "metrics.json")["validation"]
    assert {"loss", "precision", "recall", "f1", "token_accuracy", "per_type"} <= set(validation)
    assert set(validation["per_type"]) == set(TYPES)
    assert all(0.0 <= validation[k] <= 1.0 for k in ("precision", "recall", "f1", "token_accuracy"))
    assert "metric_for_best: f1" in (run / "config.yaml").read_text()  # the task's default, recorded


@pytest.mark.parametrize("method", NER_METHODS)
def test_eval_reproduces_training_metrics_exactly(ner_runs, tmp_path, method):
    run = ner_runs[method]
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path}"]) == 0
    assert read_json(tmp_path / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]


# After 4 smoke steps these runs still predict entities; prefix tuning, at its 1e-2 rate, already
# says O everywhere, which would leave nothing to check.
@pytest.mark.parametrize("method", ["full", "lora", "adapter"])
def test_predict_raw_text_gives_spans_that_slice_the_input(ner_runs, tmp_path, method):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": text} for i, text in enumerate(TEXTS)])
    out = tmp_path / "preds.jsonl"
    assert main(["predict", f"run_dir={ner_runs[method]}", f"input={source}", f"output={out}",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    predictions = read_jsonl(out)
    assert [p["id"] for p in predictions] == list(range(len(TEXTS)))  # input order and fields kept
    found = 0
    for prediction in predictions:
        assert "tags" not in prediction
        for entity in prediction["entities"]:
            assert prediction["text"][entity["start"]:entity["end"]] == entity["text"]
            assert entity["text"] == entity["text"].strip() and entity["text"]
            assert entity["type"] in TYPES and 0.0 < entity["score"] <= 1.0
            found += 1
    assert found > 0  # the offsets were checked on real spans


@pytest.mark.parametrize("method", NER_METHODS)
def test_predict_on_words_tags_every_token_and_agrees_with_eval(ner_runs, tmp_path, method):
    run, gold = ner_runs[method], gold_rows()
    dev = write_jsonl(tmp_path / "dev.jsonl", gold)
    words = write_jsonl(tmp_path / "words.jsonl", [{"tokens": row["tokens"]} for row in gold])
    out = tmp_path / "preds.jsonl"
    assert main(["eval", f"run_dir={run}", f"data.validation_file={dev}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert main(["predict", f"run_dir={run}", f"input={words}", f"output={out}", f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    predictions = read_jsonl(out)
    assert [p["tokens"] for p in predictions] == [row["tokens"] for row in gold]
    for prediction in predictions:
        assert len(prediction["tags"]) == len(prediction["tokens"])
        for entity in prediction["entities"]:
            start, end = entity["start"], entity["end"]
            assert entity["text"] == " ".join(prediction["tokens"][start:end])
            assert prediction["tags"][start] == f"B-{entity['type']}"
            assert prediction["tags"][start + 1:end] == [f"I-{entity['type']}"] * (end - start - 1)
    scores = entity_metrics([p["tags"] for p in predictions], [row["tags"] for row in gold], TYPES, strict=False)
    evaluated = read_json(tmp_path / "e" / "metrics.json")["validation"]
    assert {k: scores[k] for k in ("precision", "recall", "f1", "per_type")} == {
        k: evaluated[k] for k in ("precision", "recall", "f1", "per_type")
    }
    assert evaluated["f1"] == read_json(run / "metrics.json")["validation"]["f1"]  # the same 32 rows


def to_conll(rows: list[dict], iobes: bool) -> str:
    """CoNLL-2003-style lines (token, POS, chunk, tag), tags rewritten in IOBES when asked."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for row in rows:
        tags = row["tags"]
        for i, (token, tag) in enumerate(zip(row["tokens"], tags)):
            if iobes and tag != "O":
                ends = i + 1 == len(tags) or tags[i + 1] != f"I-{tag[2:]}"
                tag = {("B", True): "S", ("B", False): "B", ("I", True): "E", ("I", False): "I"}[tag[0], ends] + tag[1:]
            lines.append(f"{token} X X {tag}")
        lines.append("")
    return "\n".join(lines)


def test_train_and_eval_on_conll_files_in_iobes(tmp_path):
    train_rows = read_rows(str(sample_dir("ner") / "train.jsonl"), "x")
    (tmp_path / "train.conll").write_text(to_conll(train_rows, iobes=True), encoding="utf-8")
    (tmp_path / "dev.conll").write_text(to_conll(gold_rows(), iobes=True), encoding="utf-8")
    run = train(tmp_path / "run", "task=ner", "method=ia3", f"data.train_file={tmp_path / 'train.conll'}",
                f"data.validation_file={tmp_path / 'dev.conll'}")
    assert read_json(run / "labels.json") == {"labels": LABELS}  # IOBES in, IOB2 learnt
    # the same sentences in IOB2 jsonl score exactly the same
    dev = write_jsonl(tmp_path / "dev.jsonl", gold_rows())
    assert main(["eval", f"run_dir={run}", f"data.validation_file={dev}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]
    # a CoNLL file of tokens alone is input for predict
    (tmp_path / "words.conll").write_text("Grace\nAdeyemi\nvisited\nOslo\n.\n\nHi\n", encoding="utf-8")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={tmp_path / 'words.conll'}", f"output={out}",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    assert [len(p["tags"]) for p in read_jsonl(out)] == [5, 1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"tokens": ["Ada", "sang", "."], "tags": ["B-PER", "O"]}, "record 1 has 3 tokens but 2 tags"),
        ({"tokens": ["Ada"], "tags": ["X-PER"]}, "record 1, token 0: 'X-PER' is not an entity tag"),
        ({"tokens": "Ada sang", "tags": ["B-PER", "O"]}, "record 1: 'tokens' is str, not a list of tokens"),
    ],
)
def test_bad_training_rows_fail_before_training(tmp_path, capsys, row, message):
    data = write_jsonl(tmp_path / "train.jsonl", [{"tokens": ["Oslo"], "tags": ["B-LOC"]}, row])
    code = main(["train", "model=tiny_bert", "debug=smoke", "task=ner", f"data.train_file={data}",
                 f"data.validation_file={data}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == EXIT_DATA
    err = panel_text(capsys)
    assert message in err and "train.jsonl" in err
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_tag_outside_the_run_label_set_fails_eval(ner_runs, tmp_path, capsys):
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"tokens": ["Ada", "sang"], "tags": ["B-SINGER", "O"]}])
    assert main(["eval", f"run_dir={ner_runs['lora']}", f"data.validation_file={dev}",
                 f"hydra.run.dir={tmp_path / 'e'}"]) == EXIT_DATA
    assert "record 0, token 0: tag 'B-SINGER' is not in the label set" in panel_text(capsys)


@pytest.mark.parametrize("method", ["prompt_tuning", "p_tuning"])
def test_input_prompt_methods_are_refused_with_an_alternative(tmp_path, capsys, method):
    code = main(["train", "model=tiny_bert", "debug=smoke", "task=ner", f"method={method}",
                 f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == EXIT_MODEL
    err = panel_text(capsys)
    assert f"method={method} cannot tag tokens" in err and "prefix_tuning" in err


def test_merged_lora_export_is_a_plain_token_classifier(ner_runs, tmp_path):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from ftcli.runs.trained import load_trained

    run, folder = ner_runs["lora"], tmp_path / "merged"
    assert main(["export", f"run_dir={run}", "merge=true", f"output={folder}", f"hydra.run.dir={tmp_path / 'x'}"]) == 0
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: token-classification" in card and "AutoModelForTokenClassification" in card
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    assert model.config.id2label == dict(enumerate(LABELS))
    batch = AutoTokenizer.from_pretrained(folder)(["Grace Adeyemi visited Oslo ."], return_tensors="pt")
    with torch.inference_mode():
        expected = load_trained(run).model(**batch).logits
        assert torch.allclose(model(**batch).logits, expected, atol=1e-5)
