"""Augmented and few-shot training sets through `ftcli train`: rewrites by a tiny T5 run (what it
predicts, kept in the run directory and read back), EDA copies and k rows per class, with the
validation and test rows untouched."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from ftcli.config.schema import DataConfig
from ftcli.data.splits import load_splits
from ftcli.errors import EXIT_CONFIG, EXIT_DATA, EXIT_RUN_DIR
from ftcli.runs import rewrites
from ftcli.runs.rewrites import check_rewrite_runs, rewrite_rows
from ftcli.runs.trained import load_trained
from ftcli.tasks.classification import ClassificationTask
from ftcli.tasks.instruction import normalise
from tests.integration.conftest import train

TEXTS = ["the film was a delight", "a dull and slow story", "great acting and a fine plot", "the ending made no sense",
         "I would watch it again", "bad sound and worse jokes"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def paraphraser(tmp_path_factory):
    """A finished tiny T5 summarization run: it writes (random) text from text, 4 tokens at most."""
    return train(tmp_path_factory.mktemp("paraphraser") / "run", "task=summarization", "model=tiny_t5",
                 "task.generation.max_new_tokens=4", "trainer.max_steps=1", "trainer.eval_strategy=no",
                 "data.max_train_samples=8", "data.max_eval_samples=2")


def changed(rows, texts):
    """The rows a rewrite adds: each row with its rewrite, where that is not empty and not the same text."""
    return [{**row, "text": text} for row, text in zip(rows, texts)
            if text.strip() and normalise(text) != normalise(row["text"])]


def refuse_to_load(path):
    raise AssertionError(f"{path} was loaded")


def test_rewrites_are_what_the_run_predicts_kept_and_read_back(paraphraser, tmp_path, monkeypatch):
    rows = [{"text": text, "label": i % 2} for i, text in enumerate(TEXTS)]
    runs = check_rewrite_runs([str(paraphraser)])
    cache = tmp_path / "rewrites.json"
    first = rewrite_rows(rows, ["text"], runs, cache)

    out = tmp_path / "predicted.jsonl"
    assert main(["predict", f"run_dir={paraphraser}", f"input={write_jsonl(tmp_path / 'in.jsonl', rows)}",
                 f"output={out}", f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    predicted = [json.loads(line)["generated"] for line in out.read_text().splitlines()]
    assert json.loads(cache.read_text())["texts"] == {"text": predicted}  # greedy, as the run's own predict writes
    assert not first.cached and first.rows == changed(rows, predicted)

    monkeypatch.setattr(rewrites, "load_trained", refuse_to_load)
    again = rewrite_rows(rows, ["text"], runs, cache)
    assert again.cached and again.rows == first.rows  # a resumed run reads them back: no model loads

    loaded = []
    monkeypatch.setattr(rewrites, "load_trained", lambda path: loaded.append(path) or load_trained(path))
    fingerprint = json.loads(cache.read_text())["fingerprint"]
    assert not rewrite_rows(rows[:-1], ["text"], runs, cache).cached  # other texts: written again
    assert loaded == [paraphraser] and json.loads(cache.read_text())["fingerprint"]["texts"] != fingerprint["texts"]

    metrics = (paraphraser / "metrics.json").read_bytes()
    try:  # the same folder trained again: its config and metrics change, so the rewrites are written again
        (paraphraser / "metrics.json").write_text(json.dumps({**json.loads(metrics), "retrained": True}))
        assert not rewrite_rows(rows[:-1], ["text"], runs, cache).cached and len(loaded) == 2
    finally:
        (paraphraser / "metrics.json").write_bytes(metrics)


def test_training_grows_only_the_training_split(paraphraser, tmp_path, monkeypatch):
    labels = ["positive", "negative"]
    rows = [{"text": f"{TEXTS[i % len(TEXTS)]} number {i}", "label": labels[i % 2]} for i in range(24)]
    train_file, test_file = write_jsonl(tmp_path / "train.jsonl", rows), write_jsonl(tmp_path / "test.jsonl", rows[:5])
    synonyms = tmp_path / "synonyms.json"
    synonyms.write_text(json.dumps({"film": ["movie"], "story": ["tale", "plot"], "great": ["fine"]}))
    encoded = {}
    encode = ClassificationTask.encode

    def spy(self, rows, source, with_labels=True):
        encoded[source] = json.dumps(rows)
        return encode(self, rows, source, with_labels)

    monkeypatch.setattr(ClassificationTask, "encode", spy)
    run = train(tmp_path / "run", f"data.train_file={train_file}", f"data.test_file={test_file}",
                "data.validation_ratio=0.25", "data.shots_per_class=3", "data.augment.copies=2",
                "data.augment.synonyms=[file]", f"data.augment.synonyms_file={synonyms}",
                f"data.augment.rewrite_runs=[{paraphraser}]")

    plain = load_splits(DataConfig(train_file=str(train_file), test_file=str(test_file), validation_ratio=0.25),
                        "sentiment", 42, training=True)
    [train_source] = [source for source in encoded if source.endswith("(3 per class, seed 42)")]
    assert encoded[plain.sources["validation"]] == json.dumps(plain["validation"])  # byte-equal
    assert encoded[str(test_file)] == json.dumps(rows[:5])
    assert len(encoded) == 3
    trained_on = json.loads(encoded[train_source])
    counts = json.loads((run / "metrics.json").read_text())["train"]["training_rows"]
    assert counts["read"] == 18 and (counts["shots_per_class"], counts["drawn"]) == (3, 6)
    assert 0 < counts["eda_copies"] <= 12 and counts["trained_on"] == len(trained_on) == 6 + counts["rewrites"] + \
        counts["eda_copies"]
    shots = trained_on[:6]
    assert sorted(row["label"] for row in shots) == ["negative"] * 3 + ["positive"] * 3
    assert all(row in plain["train"] for row in shots)
    rewritten = json.loads((run / "rewrites.json").read_text())["texts"]["text"]
    assert trained_on[6:6 + counts["rewrites"]] == changed(shots, rewritten)
    copies = trained_on[6 + counts["rewrites"]:]
    assert all(copy["label"] in {row["label"] for row in shots if row["text"] != copy["text"]} for copy in copies)
    line = f"training rows: 18 → 6 (3 per class) + {counts['rewrites']} rewrites + {counts['eda_copies']} EDA copies"
    assert line in (run / "train.log").read_text()


@pytest.mark.parametrize(("overrides", "code", "message"), [
    (["task=ner", "data.augment.copies=2"], EXIT_CONFIG, "task=ner rows are not augmented"),
    (["task=summarization", "data.shots_per_class=2"], EXIT_CONFIG, "draws rows of each class"),
    (["data.augment.rewrite_runs=[{tmp}/nothing]"], EXIT_RUN_DIR, "rewrite_runs[0]={tmp}/nothing is not a finished"),
    (["data.shots_per_class=100"], EXIT_DATA, "has fewer than 100 rows of 2 class(es)"),
])
def test_what_cannot_work_is_refused(tmp_path, capsys, overrides, code, message):
    tmp = str(tmp_path)
    argv = ["train", "model=tiny_bert", "debug=smoke", f"hydra.run.dir={tmp_path / 'run'}",
            *(o.format(tmp=tmp) for o in overrides)]
    assert main(argv) == code
    assert message.format(tmp=tmp) in " ".join(capsys.readouterr().err.replace("│", " ").split())


def test_a_run_that_does_not_write_text_is_refused_as_a_rewriter(trained_runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rewrites, "load_trained", refuse_to_load)
    classifier = trained_runs["full"]
    assert main(["train", "model=tiny_bert", "debug=smoke", f"hydra.run.dir={tmp_path / 'run'}",
                 f"data.augment.rewrite_runs=[{classifier}]"]) == EXIT_CONFIG
    assert f"rewrite_runs[0]={classifier} is a task=sentiment run; rewriting needs a task=summarization" in \
        " ".join(capsys.readouterr().err.replace("│", " ").split())


def test_a_scorer_refuses_augmentation(tmp_path, capsys):
    assert main(["eval", "task=prompting", "model=tiny_gpt2", "data.augment.copies=2",
                 f"hydra.run.dir={tmp_path / 'run'}"]) == EXIT_CONFIG
    assert "`ftcli eval task=prompting` trains nothing" in " ".join(capsys.readouterr().err.replace("│", " ").split())
