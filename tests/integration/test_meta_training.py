"""Meta-training (`trainer.meta.tasks`) through the real CLI on the tiny BERT: its run directory is
the starting point of an ordinary `ftcli train`, with the meta-trained weights loaded as they were
saved; a run stopped after a checkpoint resumes to the uninterrupted result; settings it cannot
take and datasets too small for an episode are refused before anything trains."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from ftcli.cli.main import main
from ftcli.config.schema import ModelConfig
from ftcli.engine.checkpoint import list_checkpoints
from ftcli.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERRUPTED, EXIT_RUN_DIR
from ftcli.models.loading import build_model
from ftcli.runs import meta_training

WORDS = {
    "colour": "red blue green amber violet", "animal": "cat dog cow owl fox", "number": "one two three four six",
    "up": "rise climb lift soar grow", "down": "fall drop sink dip shrink",
}


def write(path, classes, per_class):
    rows = []
    for i in range(per_class):
        for label in classes:
            words = WORDS[label].split()
            rows.append({"text": " ".join(words[(i + k) % len(words)] for k in range(3)), "label": label})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def datasets(tmp_path):
    return (write(tmp_path / "kinds.jsonl", ["colour", "animal", "number"], 6),
            write(tmp_path / "moves.jsonl", ["up", "down"], 6))


def meta_args(datasets, *overrides):
    kinds, moves = datasets
    return ["train", "model=tiny_bert", "task=text_classification", f"trainer.meta.tasks=[{kinds},{moves}]",
            "trainer.meta.episodes=4", "trainer.meta.shots=2", "trainer.meta.queries=2", "trainer.meta.inner_steps=2",
            "trainer.meta.eval_episodes=2", "trainer.eval_steps=3", "trainer.logging_steps=3", *overrides]


def records(run):
    return [{k: v for k, v in json.loads(line).items() if k != "samples_per_second"}
            for line in (run / "train_log.jsonl").read_text().splitlines()]


def test_a_meta_run_is_the_starting_point_of_an_ordinary_run(tmp_path, datasets, capsys):
    meta = tmp_path / "meta"
    assert main([*meta_args(datasets), f"hydra.run.dir={meta}"]) == 0
    metrics = json.loads((meta / "metrics.json").read_text())
    assert metrics["train"]["episodes"] == 4 and metrics["train"]["meta_lr"] == 0.1
    assert set(metrics["eval_episodes"]["tasks"]) == {"kinds.jsonl", "moves.jsonl"}
    assert json.loads((meta / "labels.json").read_text()) == {"labels": []}
    assert [r["step"] for r in records(meta)] == [3, 3, 4, 4]  # log and evaluation records
    saved = load_file(str(meta / "model" / "model.safetensors"))
    assert not any(key.startswith("classifier.") for key in saved)
    assert {"tokenizer.json", "tokenizer_config.json", "config.json"} <= {p.name for p in (meta / "model").iterdir()}

    initial = build_model(ModelConfig("tiny:bert"), AutoModelForSequenceClassification, ["0", "1"]).state_dict()
    assert any(not torch.equal(saved[key], initial[key]) for key in saved)  # the episodes moved the encoder
    loaded = build_model(ModelConfig(str(meta)), AutoModelForSequenceClassification, ["negative", "positive"])
    state = loaded.state_dict()
    assert set(state) - set(saved) == {"classifier.weight", "classifier.bias"}  # a fresh head, nothing else new
    assert all(torch.equal(state[key], saved[key]) for key in saved)

    fine_tuned = tmp_path / "sentiment"
    assert main(["train", "task=sentiment", "debug=smoke", f"model.name_or_path={meta}",
                 f"hydra.run.dir={fine_tuned}"]) == 0
    assert (fine_tuned / "metrics.json").is_file()
    assert f"name_or_path: {meta}" in (fine_tuned / "config.yaml").read_text()

    capsys.readouterr()
    assert main(["eval", f"run_dir={meta}", f"hydra.run.dir={tmp_path / 'eval'}"]) == EXIT_RUN_DIR
    assert f"run_dir={meta} is a meta-training run" in " ".join(capsys.readouterr().err.split())


def test_a_run_stopped_between_log_records_resumes_to_the_uninterrupted_result(tmp_path, datasets, monkeypatch,
                                                                               capsys):
    """Ctrl-C after episode 3 of 4, with checkpoints every 2 and log records every 2: episode 3's figures
    are half a log record, kept in the checkpoint; the resumed run ends bit-identical, log and all."""
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    args = meta_args(datasets, "trainer.save_every=2", "trainer.logging_steps=2", "trainer.meta.algorithm=fomaml")
    assert main([*args, f"hydra.run.dir={whole}"]) == 0

    real, calls = meta_training.meta_step, []

    def ctrl_c_in_episode_three(*step_args):
        calls.append(1)
        figures = real(*step_args)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return figures

    monkeypatch.setattr(meta_training, "meta_step", ctrl_c_in_episode_three)
    capsys.readouterr()
    assert main([*args, f"hydra.run.dir={stopped}"]) == EXIT_INTERRUPTED
    message = " ".join(capsys.readouterr().err.split())
    assert f"SIGINT at step 3 of 4: checkpoint saved in {stopped / 'checkpoints' / 'step-3'}" in message
    assert f"hydra.run.dir={stopped} trainer.resume=auto" in message
    assert [p.name for p in list_checkpoints(stopped)] == ["step-2", "step-3"]
    monkeypatch.undo()
    assert main([*args, "trainer.resume=auto", f"hydra.run.dir={stopped}"]) == 0

    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in (whole, stopped))
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)  # bit-identical on CPU
    assert records(stopped) == records(whole)  # at 2 and 4, evaluations at 3 and 4
    assert [r["step"] for r in records(whole)] == [2, 3, 4, 4]
    expected, got = (json.loads((run / "metrics.json").read_text()) for run in (whole, stopped))
    assert got["eval_episodes"] == expected["eval_episodes"]
    assert not (stopped / "checkpoints").exists()


def test_settings_meta_training_cannot_take_are_refused_together(tmp_path, datasets, capsys):
    kinds, _ = datasets
    run = tmp_path / "run"
    args = [*meta_args(datasets), f"trainer.meta.tasks=[{kinds}]", "task=ner", "method=lora",
            f"data.train_file={kinds}", f"hydra.run.dir={run}"]
    assert main(args) == EXIT_CONFIG
    message = " ".join(capsys.readouterr().err.split())
    assert f"trainer.meta.tasks lists one dataset ({kinds}); meta-learning needs at least two" in message
    assert ("trainer.meta.tasks cannot be combined with method=lora: meta-training learns the encoder's own weights"
            in message)
    assert ("trainer.meta.tasks cannot be combined with task=ner: meta-training learns single-label classification"
            in message)
    assert "data.train_file is not read by meta-training" in message
    assert not run.exists()


def test_a_dataset_too_small_for_an_episode_names_the_class_and_its_rows(tmp_path, datasets, capsys):
    run = tmp_path / "run"
    too_many = ["trainer.meta.shots=4", "trainer.meta.queries=3"]
    assert main([*meta_args(datasets), *too_many, f"hydra.run.dir={run}"]) == EXIT_DATA
    message = " ".join(capsys.readouterr().err.split())
    assert ("kinds.jsonl: class 'animal' has 6 rows, fewer than the shots + queries = 7 an episode draws of each class"
            in message)
    assert "moves.jsonl: class 'down' has 6 rows" in message
    assert not run.exists()


def test_the_add_ons_of_ordinary_training_are_refused_with_meta_training(tmp_path, datasets, capsys):
    run = tmp_path / "run"
    args = [*meta_args(datasets), "trainer.ema=0.9", "trainer.adversarial.method=fgm", "data.shots_per_class=2",
            f"hydra.run.dir={run}"]
    assert main(args) == EXIT_CONFIG
    message = " ".join(capsys.readouterr().err.split())
    assert ("trainer.adversarial.method, trainer.ema, data.shots_per_class change the training of one dataset; "
            "meta-training has inner and outer steps and episodes of its own") in message
    assert not run.exists()
