"""Resume: a training process killed with SIGKILL continues from its last checkpoint and ends
exactly where an uninterrupted run with the same seed ends (weights and metrics)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from ftcli.cli.main import main

STEPS = ["model=tiny_bert", "data.max_train_samples=96", "data.max_eval_samples=32", "trainer.batch_size=4",
         "trainer.max_steps=48", "trainer.eval_strategy=steps", "trainer.eval_steps=8", "trainer.logging_steps=4",
         "trainer.save_every=4"]


def weights(run):
    folder = run / ("model" if (run / "model").is_dir() else "adapter")
    [file] = [f for f in folder.iterdir() if f.suffix == ".safetensors"]
    return load_file(str(file))


def read_json(path):
    return json.loads(path.read_text())


def kill_after_first_checkpoint(run, *overrides):
    """Start training in a subprocess and SIGKILL it once a checkpoint exists, before it finishes."""
    command = [sys.executable, "-m", "ftcli", "train", *STEPS, *overrides, f"hydra.run.dir={run}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((run / "checkpoints").glob("step-*")) and time.monotonic() < deadline:
        assert process.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.02)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run / "metrics.json").exists()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, method):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(["train", *STEPS, f"method={method}", f"hydra.run.dir={whole}"]) == 0
    kill_after_first_checkpoint(killed, f"method={method}")
    assert main(["train", *STEPS, f"method={method}", f"hydra.run.dir={killed}"]) == 6  # no silent restart
    assert main(["train", *STEPS, f"method={method}", "trainer.resume=auto", f"hydra.run.dir={killed}"]) == 0
    expected, got = read_json(whole / "metrics.json"), read_json(killed / "metrics.json")
    assert got["validation"] == expected["validation"]
    assert got["train"]["steps"] == 48 and got["train"]["best_step"] == expected["train"]["best_step"]
    a, b = weights(whole), weights(killed)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)  # bit-identical on CPU
    assert not (killed / "checkpoints").exists()  # a finished run keeps no checkpoints
    steps = [json.loads(line)["step"] for line in (killed / "train_log.jsonl").read_text().splitlines()]
    assert steps == [json.loads(line)["step"] for line in (whole / "train_log.jsonl").read_text().splitlines()]


def test_resuming_a_finished_run_does_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *STEPS, "trainer.max_steps=4", f"hydra.run.dir={run}"]) == 0
    import torch

    environment = read_json(run / "environment.json")
    assert environment["torch"] == torch.__version__
    assert {"ftcli", "transformers", "peft", "git_commit", "python"} <= set(environment)

    def state():
        return ((run / "metrics.json").read_text(), (run / "model" / "model.safetensors").stat().st_mtime_ns,
                (run / ".hydra" / "overrides.yaml").read_text())  # the command export puts in the model card

    before = state()
    assert main(["train", *STEPS, "trainer.max_steps=4", "trainer.resume=auto", f"hydra.run.dir={run}"]) == 0
    captured = capsys.readouterr()  # the console may be on stderr after an earlier `predict output=-`
    assert "already holds a finished run; nothing to resume" in " ".join((captured.out + captured.err).split())
    assert state() == before


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    run = tmp_path / "run"
    kill_after_first_checkpoint(run)
    assert main(["train", *STEPS, "trainer.lr=0.01", "trainer.resume=auto", f"hydra.run.dir={run}"]) == 3
    assert main(["train", *STEPS, f"trainer.resume={tmp_path / 'nowhere'}", f"hydra.run.dir={run}"]) == 6
    assert list((run / "checkpoints").glob("step-*"))  # nothing was lost


SHORT = [*STEPS[:4], "trainer.max_steps=8", "trainer.eval_strategy=steps", "trainer.eval_steps=4",
         "trainer.logging_steps=2", "trainer.save_every=100"]
EVERY_METHOD = ["full", "freeze", "bitfit", "lora", "ia3", "ln_tuning", "prompt_tuning", "p_tuning", "prefix_tuning",
                "adapter", "lora_adapter", "lora_prefix"]


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_ctrl_c_saves_a_checkpoint_that_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys, method):
    """SIGINT mid-run: the step finishes, a checkpoint is written (though none was due), exit 130; the resumed
    run ends bit-identical to one never interrupted."""
    from ftcli import ui
    from ftcli.errors import EXIT_INTERRUPTED

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(["train", *SHORT, f"method={method}", f"hydra.run.dir={whole}"]) == 0
    on_step = ui.TrainProgress.on_step

    def press_ctrl_c_at_step_3(self, step, record):
        on_step(self, step, record)
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ui.TrainProgress, "on_step", press_ctrl_c_at_step_3)
    monkeypatch.setenv("COLUMNS", "400")  # the error panel on one line
    capsys.readouterr()
    assert main(["train", *SHORT, f"method={method}", f"hydra.run.dir={stopped}"]) == EXIT_INTERRUPTED
    message = " ".join(capsys.readouterr().err.split())
    assert f"SIGINT at step 3 of 8: checkpoint saved in {stopped / 'checkpoints' / 'step-3'}" in message
    assert f"hydra.run.dir={stopped} trainer.resume=auto" in message
    assert [p.name for p in (stopped / "checkpoints").iterdir()] == ["step-3"]
    assert not (stopped / "metrics.json").exists()
    monkeypatch.setattr(ui.TrainProgress, "on_step", on_step)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is only there while training

    assert main(["train", *SHORT, f"method={method}", "trainer.resume=auto", f"hydra.run.dir={stopped}"]) == 0
    assert read_json(stopped / "metrics.json")["validation"] == read_json(whole / "metrics.json")["validation"]
    a, b = weights(whole), weights(stopped)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_sigterm_to_a_training_process_exits_130_with_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "ftcli", "train", *STEPS, "trainer.save_every=1000", f"hydra.run.dir={run}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "400"})
    deadline = time.monotonic() + 300
    while not (run / "train_log.jsonl").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be stopped"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    [checkpoint] = (run / "checkpoints").iterdir()
    assert f"checkpoint saved in {checkpoint}" in " ".join(stderr.split())
    assert main(["train", *STEPS, "trainer.save_every=1000", "trainer.resume=auto", f"hydra.run.dir={run}"]) == 0
    assert read_json(run / "metrics.json")["train"]["steps"] == 48
