"""summarization and translation through the CLI on a tiny T5 and on MiniLM-to-MiniLM: train → eval → predict generates."""

from __future__ import annotations

import json

import pytest

from ftcli.cli import main
from tests.integration.conftest import train

FAST = ["model=tiny_t5", "task.generation.max_new_tokens=6"]


def read_json(path):
    return json.loads(path.read_text())


def assert_reloads_and_generates(run, tmp_path, validation, text):
    """eval of the saved run scores what training scored; predict keeps the input's fields and
    generates at most the 3 new tokens it is allowed."""
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == validation
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": text, "id": 7}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", "max_new_tokens=3",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["id"] == 7 and isinstance(row["generated"], str)
    assert len(row["generated"].split()) <= 3 * 2  # at most 3 new tokens (a word piece may print as a word)


@pytest.mark.parametrize(("task", "method", "scores"), [
    ("summarization", "full", {"rouge1", "rouge2", "rougeL", "rougeLsum"}),
    ("translation", "lora", {"bleu", "chrf"}),
    ("summarization", "adapter", {"rougeL"}),
])
def test_seq2seq_trains_evaluates_and_generates(tmp_path, task, method, scores):
    run = train(tmp_path / "run", f"task={task}", f"method={method}", *FAST)
    validation = read_json(run / "metrics.json")["validation"]
    assert scores <= set(validation) and validation["loss"] > 0
    assert read_json(run / "metrics.json")["train"]["steps"] == 4
    assert_reloads_and_generates(run, tmp_path, validation, "My brother reads a book today.")


def test_generation_settings_on_a_classification_run_are_refused(tmp_path):
    run = train(tmp_path / "run", "method=full")
    source = tmp_path / "in.txt"
    source.write_text("fine\n")
    assert main(["predict", f"run_dir={run}", f"input={source}", "num_beams=4", f"hydra.run.dir={tmp_path / 'p'}"]) == 3


# the MiniLM-to-MiniLM encoder-decoder has 49M parameters: one epoch of one step on 4 rows, 4 to score
WARMSTART = ["model=minilm2minilm", "trainer.max_steps=null", "trainer.epochs=1", "data.max_train_samples=4",
             "trainer.batch_size=4", "trainer.eval_strategy=no", "data.max_eval_samples=4", "task.max_length=32",
             "task.max_target_length=16", "task.generation.max_new_tokens=4"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Version v4.12.0 introduces:FutureWarning")
def test_warm_started_minilm_trains_evaluates_and_generates(tmp_path):
    """Full fine-tuning reloads through AutoModelForSeq2SeqLM; an adapter run rebuilds the same base
    (tests/unit/test_warmstart.py checks that the base is the same on every build)."""
    run = train(tmp_path / "run", "task=summarization", *WARMSTART)
    metrics = read_json(run / "metrics.json")
    assert {"rouge1", "rouge2", "rougeL"} <= set(metrics["validation"]) and metrics["train"]["steps"] == 1
    assert_reloads_and_generates(run, tmp_path, metrics["validation"], "The council opened a new bridge on Monday.")
