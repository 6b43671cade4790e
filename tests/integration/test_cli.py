"""The `ftcli` entry point as a user meets it: help, usage errors, exit codes, sweeps, stdin/stdout,
what a run prints first and what its log file holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_USAGE
from tests.integration.conftest import SMOKE, train


def ftcli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ftcli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )


def test_help_lists_the_commands():
    result = ftcli("--help")
    assert result.returncode == 0
    for command in ("train", "eval", "predict", "export", "ilf"):
        assert command in result.stdout


def task_options(help_text):
    """The options `--help` lists for the task group, in its order (the default marked with *)."""
    import re

    flat = " ".join(help_text.split())  # the list may wrap
    listed = re.search(r"\btask: ((?:[\w*]+, )*[\w*]+)", flat)
    assert listed, help_text
    return [name.strip() for name in listed.group(1).split(",")]


def test_command_help_lists_groups_and_options():
    result = ftcli("train", "--help")
    assert result.returncode == 0
    assert "method: adapter, bitfit, freeze, full*, ia3, ln_tuning, lora, lora_adapter, lora_prefix, p_tuning, prefix_tuning, prompt_tuning" in result.stdout
    tasks = task_options(result.stdout)
    assert tasks == sorted(tasks) and "sentiment*" in tasks
    assert {"instruction", "kto", "ner", "pair_classification", "preference", "prompting", "qa", "reward_model", "summarization",
            "text_classification", "translation"} <= set(tasks)
    assert "metric_for_best" in result.stdout


def test_prompting_help_shows_its_own_settings():
    result = ftcli("eval", "task=prompting", "--help")
    assert result.returncode == 0
    assert "prompting*" in task_options(result.stdout)
    assert "model:" in result.stdout and "label_words" in result.stdout and "run_dir" not in result.stdout


def test_unknown_command_is_a_usage_error():
    result = ftcli("trian")
    assert result.returncode == EXIT_USAGE
    assert "did you mean 'train'" in result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.lrr=1", "trainer.lrr is not a setting (did you mean 'lr'?)"),
        ("method=lorra", "options for method: adapter, bitfit, freeze, full, ia3, ln_tuning, lora, lora_adapter, lora_prefix, p_tuning, prefix_tuning, prompt_tuning"),
        ("+trainer.foo=1", "trainer.foo is not a known setting"),
        ("trainer.lr=abc", "could not convert string to float: 'abc'"),
    ],
)
def test_config_typos_fail_before_anything_runs(tmp_path, override, expected):
    result = ftcli("train", override, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == EXIT_CONFIG
    assert expected in " ".join(result.stderr.split())
    assert not (tmp_path / "run").exists()


def test_cfg_job_prints_the_config_and_runs_nothing(tmp_path):
    result = ftcli("train", "method=lora", "--cfg", "job", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0
    assert "name: lora" in result.stdout and "rank: 8" in result.stdout
    assert not (tmp_path / "run").exists()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("files", "extra", "code", "expected"),
    [
        ({"train.jsonl": '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": oops}\n'}, [],
         EXIT_DATA, "line 3 is not valid JSON"),
        ({"train.jsonl": ""}, [], EXIT_DATA, "is empty"),
        ({"train.jsonl": '{"body": "a", "label": "x"}\n{"body": "b", "label": "y"}\n'}, [],
         EXIT_DATA, "columns found: body, label"),
        ({"train.jsonl": '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n' * 5},
         ["model.name_or_path=some-org/no-such-model"], EXIT_MODEL, "some-org/no-such-model"),
    ],
)
def test_bad_input_gets_one_clear_error(tmp_path, files, extra, code, expected):
    for name, text in files.items():
        write(tmp_path / name, text)
    result = ftcli("train", *SMOKE, f"data.train_file={tmp_path / 'train.jsonl'}", *extra,
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == code, result.stderr
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_offline_model_error_says_what_to_do(tmp_path):
    result = ftcli("train", "model.name_or_path=some-org/no-such-model", f"hydra.run.dir={tmp_path / 'run'}")
    message = " ".join(result.stderr.split())
    assert result.returncode == EXIT_MODEL
    assert "HF_HUB_OFFLINE" in message and "model=minilm" in message


def test_predict_stdin_to_stdout_is_pure_jsonl(trained_runs, tmp_path):
    result = ftcli("predict", f"run_dir={trained_runs['lora']}", "input=-", "output=-",
                   f"hydra.run.dir={tmp_path}", stdin="a lovely day\nthe worst meal ever\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["a lovely day", "the worst meal ever"]
    assert all(set(r) == {"text", "label", "probs"} for r in rows)


def test_multirun_sweeps_every_combination(tmp_path):
    code = main(["train", "-m", *SMOKE, "method=full,lora", "trainer.lr=1e-4,1e-3", f"hydra.sweep.dir={tmp_path}"])
    assert code == 0
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    configs = [(json.loads((j / "metrics.json").read_text())["train"]["lr"], (j / "adapter").exists()) for j in jobs]
    assert sorted(configs) == [(1e-4, False), (1e-4, True), (1e-3, False), (1e-3, True)]


def test_eval_of_a_missing_run_dir(tmp_path):
    assert main(["eval", f"run_dir={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'e'}"]) == 6


@pytest.mark.parametrize("args", [["--help"], ["train", "--cfg", "job"], ["train", "--help"]])
def test_startup_imports_no_torch(args):
    code = f"import sys; from ftcli.cli.main import main; main({args!r}); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model=some-org/some-model", "model.name_or_path=some-org/some-model"),
        ("model=distilbert-base-uncased", "model.name_or_path=distilbert-base-uncased"),
        ("model=a/b,c/d", "model.name_or_path=a/b,c/d"),
        ("model=minilm", "model=minilm"),
        ("model=minlm", "model=minlm"),  # a typo of an option stays a group choice, so Hydra lists the options
        ("model.name_or_path=x", "model.name_or_path=x"),
    ],
)
def test_model_accepts_a_hub_id_or_folder(override, expected):
    from ftcli.cli.argv import model_choice_as_path
    from ftcli.cli.main import config_dir

    assert model_choice_as_path(override, config_dir()) == expected


def test_multirun_over_precision_and_accumulation(tmp_path):
    code = main(["train", "-m", *SMOKE, "trainer.max_steps=2", "trainer.precision=fp32,bf16",
                 "trainer.grad_accum_steps=1,2", f"hydra.sweep.dir={tmp_path}"])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if (p / "metrics.json").is_file()) == ["0", "1", "2", "3"]


def panel_text(capsys) -> str:
    return " ".join(capsys.readouterr().err.replace("│", " ").split())


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["--epochs", "3"], "unknown flag --epochs (did you mean trainer.epochs=3?)"),
        (["--lr=1e-4"], "unknown flag --lr (did you mean trainer.lr=1e-4?)"),
        (["--method", "lora"], "unknown flag --method (did you mean method=lora?)"),
        (["--bogus"], "unknown flag --bogus: ftcli takes settings as key=value"),
    ],
)
def test_an_unknown_flag_gets_the_usage_panel_with_the_override_it_means(tmp_path, capsys, words, expected):
    code = main(["train", *words, f"hydra.run.dir={tmp_path / 'run'}"])
    message = panel_text(capsys)
    assert code == EXIT_USAGE
    assert "usage error" in message and expected in message
    assert "[--hydra-help]" not in message  # not argparse's usage
    assert not (tmp_path / "run").exists()


def test_an_unknown_flag_hint_is_the_corrected_command(tmp_path, capsys):
    code = main(["train", "task=ner", "--epochs", "3", "--learning-rate", "2e-5", "-m"])
    message = panel_text(capsys)
    assert code == EXIT_USAGE
    assert "unknown flags --epochs (did you mean trainer.epochs=3?), --learning-rate (did you mean trainer.lr=2e-5?)" in message
    assert "fix: ftcli train task=ner trainer.epochs=3 trainer.lr=2e-5 -m" in message
    assert main(["eval", "task=prompting", "--shots", "4"]) == EXIT_USAGE
    assert "did you mean task.shots=4?" in panel_text(capsys)


def test_train_starts_with_a_short_summary(tmp_path):
    """Before anything else (here a data error), a few lines: model, task, method, data, the overrides as
    resolved, the run directory; the whole config is for `--cfg job`."""
    run = tmp_path / "run"
    result = ftcli("train", *SMOKE, "data.train_file=nope.jsonl", "trainer.lr=1e-4", f"hydra.run.dir={run}")
    assert result.returncode == EXIT_DATA
    assert "data.train_file=nope.jsonl: no such file" in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 6, result.stdout
    assert lines[0] == f"ftcli train → {run}"
    rows = dict(line.split(None, 1) for line in lines[1:])
    assert rows == {
        "model": "tiny:bert", "task": "sentiment", "method": "full", "data": "train nope.jsonl",
        "overrides": "debug=smoke trainer.eval_batch_size=16 trainer.lr=0.0001",
    }


def test_the_log_file_records_the_run(tmp_path, capsys):
    run = train(tmp_path / "run")
    captured = capsys.readouterr()
    log = (run / "train.log").read_text()
    validation = json.loads((run / "metrics.json").read_text())["validation"]
    assert re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\]\[ftcli\.ui\]\[INFO\] ftcli train → ", log)
    for text in ("  model      tiny:bert", "train: 64 rows", "trainable parameters", "step 4: loss", "eval step 4",
                 "final metrics (best checkpoint):", f"accuracy {validation['accuracy']:.4f}", f"run directory: {run}"):
        assert text in log, text
    assert "ftcli.ui" not in captured.out + captured.err  # printed once: the log's copy stays off the terminal


def test_a_command_run_in_process_leaves_the_process_as_it_found_it(trained_runs, tmp_path, capsys):
    """`predict output=-` moves status output to stderr, and Hydra sets up the root logger and its job
    config for the job; all of that ends with the command, so the next one in the same process (a
    test, a script) starts as the first did."""
    import logging

    from hydra.core.hydra_config import HydraConfig

    from ftcli import ui

    run = trained_runs["lora"]  # trained (and its output printed) first, when no other test has
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "a lovely day"}) + "\n", encoding="utf-8")
    handlers, level = list(logging.root.handlers), logging.root.level
    capsys.readouterr()
    code = main(["predict", f"run_dir={run}", f"input={source}", "output=-", f"hydra.run.dir={tmp_path / 'job'}"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [json.loads(line)["text"] for line in captured.out.splitlines()] == ["a lovely day"]
    assert (logging.root.handlers, logging.root.level) == (handlers, level)
    assert not HydraConfig.initialized()
    ui.info("status after the command")
    assert capsys.readouterr().out == "status after the command\n"
