"""Distillation through the CLI: a thinner student learns a finished run's probabilities, resumes
without loading its teacher again, reloads with its layers, and every teacher that cannot teach it
is refused before training."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest
from safetensors.torch import load_file

from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG, EXIT_INTERRUPTED
from ftcli.runs.trained import load_trained
from tests.integration.conftest import train

SHORT = ["model=tiny_bert", "data.max_train_samples=48", "data.max_eval_samples=16", "trainer.batch_size=4",
         "trainer.eval_batch_size=16", "trainer.max_steps=6", "trainer.eval_strategy=steps", "trainer.eval_steps=3",
         "trainer.logging_steps=2", "trainer.save_every=100"]


def records(run):
    """The log records, without their speed (which differs from run to run)."""
    lines = (run / "train_log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("samples_per_second", "tokens_per_second")} for line in lines]


def read_json(path):
    return json.loads(path.read_text())


def test_a_distilled_student_resumes_to_the_uninterrupted_result_without_loading_its_teacher(
        tmp_path, monkeypatch, capsys, trained_runs):
    from ftcli import ui

    student = [*SHORT, f"trainer.distill.teacher={trained_runs['full']}", "trainer.distill.alpha=0.8",
               "model.num_layers=1"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(["train", *student, f"hydra.run.dir={whole}"]) == 0
    on_step = ui.TrainProgress.on_step

    def press_ctrl_c_at_step_2(self, step, record):
        on_step(self, step, record)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ui.TrainProgress, "on_step", press_ctrl_c_at_step_2)
    assert main(["train", *student, f"hydra.run.dir={stopped}"]) == EXIT_INTERRUPTED
    assert (stopped / "checkpoints" / "teacher_logits.safetensors").is_file()  # cached with the run
    monkeypatch.setattr(ui.TrainProgress, "on_step", on_step)

    def no_teacher(path):
        raise AssertionError(f"the resumed run loaded its teacher {path}")

    monkeypatch.setattr("ftcli.runs.teacher.load_trained", no_teacher)
    capsys.readouterr()
    assert main(["train", *student, "trainer.resume=auto", f"hydra.run.dir={stopped}"]) == 0
    assert "teacher logits: read back from" in " ".join(capsys.readouterr().out.split())
    assert read_json(stopped / "metrics.json")["validation"] == read_json(whole / "metrics.json")["validation"]
    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in (whole, stopped))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)  # bit-identical on CPU
    assert records(stopped) == records(whole)
    assert all(r["distill_kl"] > 0 for r in records(whole) if "loss" in r)
    assert not (stopped / "checkpoints").exists()  # the cache goes with the checkpoints once the run is whole
    assert len(load_trained(stopped).model.bert.encoder.layer) == 1  # reloads with the layer it kept


def test_a_ner_student_learns_token_by_token_and_its_adapter_reloads_on_a_thinned_base(tmp_path, trained_runs):
    teacher = trained_runs.other("ner", "task=ner")
    student = train(tmp_path / "student", "task=ner", "method=lora", "model.num_layers=1",
                    f"trainer.distill.teacher={teacher}")
    assert all(r["distill_kl"] > 0 for r in records(student) if "loss" in r)
    assert len(load_trained(student).model.get_base_model().bert.encoder.layer) == 1
    assert main(["eval", f"run_dir={student}", f"hydra.run.dir={tmp_path / 'eval'}"]) == 0
    evaluated = read_json(tmp_path / "eval" / "metrics.json")["validation"]
    assert evaluated == read_json(student / "metrics.json")["validation"]  # the adapter reloads on the same base


@pytest.fixture
def other_vocabulary(tmp_path, trained_runs):
    """A copy of the tiny ner run whose tokenizer knows one more token."""
    from transformers import AutoTokenizer

    copy = tmp_path / "ner-other-vocabulary"
    shutil.copytree(trained_runs.other("ner", "task=ner"), copy)
    tokenizer = AutoTokenizer.from_pretrained(copy / "model")
    tokenizer.add_tokens(["zzyzx"])
    tokenizer.save_pretrained(copy / "model")
    return copy


@pytest.mark.parametrize("overrides, teacher, message", [
    ([], "nowhere", "trainer.distill.teacher={teacher} is not the directory of a finished run"),
    (["task=summarization", "model=tiny_t5"], "full",
     "trainer.distill: task=summarization cannot be distilled: it generates text"),
    (["task=preference", "model=tiny_gpt2"], "full",
     "trainer.distill: task=preference cannot be distilled: its loss compares answers"),
    (["task=ner"], "full", "trainer.distill.teacher={teacher} is a task=sentiment run and this run is task=ner"),
    (["data.label_names=[negative,neutral,positive]"], "full",
     "was trained on the labels ['negative', 'positive'] and this run's are ['negative', 'neutral', 'positive']: "
     "the teacher lacks neutral"),
    (["task=ner"], "other_vocabulary", "task=ner learns the teacher's scores token by token, and the teacher's "
     "tokenizer splits text differently from this model's"),
])
def test_a_teacher_that_cannot_teach_is_refused_before_training(
        tmp_path, capsys, request, trained_runs, overrides, teacher, message):
    path = {"nowhere": tmp_path / "nowhere", "full": trained_runs["full"]}.get(teacher)
    path = path or request.getfixturevalue(teacher)
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", *SHORT, *overrides, f"trainer.distill.teacher={path}", f"hydra.run.dir={run}"]) == EXIT_CONFIG
    assert message.format(teacher=path) in " ".join(capsys.readouterr().err.split())
    assert not run.exists()
