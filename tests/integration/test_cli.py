"""The `ftcli` entry point as a user meets it: help, usage errors, exit codes, sweeps, stdin/stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftcli.cli import main
from ftcli.errors import EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_USAGE

from tests.integration.conftest import SMOKE


def ftcli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ftcli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )


def test_help_lists_the_commands():
    result = ftcli("--help")
    assert result.returncode == 0
    for command in ("train", "eval", "predict", "export"):
        assert command in result.stdout


def test_command_help_lists_groups_and_options():
    result = ftcli("train", "--help")
    assert result.returncode == 0
    assert "method: adapter, bitfit, freeze, full*, ia3, ln_tuning, lora, lora_adapter, lora_prefix, p_tuning, prefix_tuning, prompt_tuning" in result.stdout
    assert ("task: instruction, ner, pair_classification, prompting, qa, sentiment*, summarization, "
            "text_classification, translation") in result.stdout
    assert "metric_for_best" in result.stdout


def test_prompting_help_shows_its_own_settings():
    result = ftcli("eval", "task=prompting", "--help")
    assert result.returncode == 0
    assert "task: instruction, ner, pair_classification, prompting*" in result.stdout
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
    code = f"import sys; from ftcli.cli import main; main({args!r}); print('torch' in sys.modules)"
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
    from ftcli.argv import model_choice_as_path
    from ftcli.cli import config_dir

    assert model_choice_as_path(override, config_dir()) == expected


def test_multirun_over_precision_and_accumulation(tmp_path):
    code = main(["train", "-m", *SMOKE, "trainer.max_steps=2", "trainer.precision=fp32,bf16",
                 "trainer.grad_accum_steps=1,2", f"hydra.sweep.dir={tmp_path}"])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if (p / "metrics.json").is_file()) == ["0", "1", "2", "3"]
