"""Tests of ftcli.cli.argv: the command-line conveniences rewritten before Hydra sees the words."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftcli.cli.argv import (
    HYDRA_FLAGS,
    UnknownFlag,
    flag_as_override,
    is_hydra_flag,
    normalise,
    unknown_flags,
    without_flags,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_flags_move_first_and_model_ids_become_paths():
    words = normalise("train", ["task=ner", "--cfg", "job", "model=org/some-model"], CONFIGS)
    assert words == ["--cfg", "job", "task=ner", "model.name_or_path=org/some-model"]
    assert normalise("eval", ["task=prompting", "model=gpt2"], CONFIGS)[1] == "model.name_or_path=gpt2"
    assert normalise("train", ["model=minlm"], CONFIGS) == ["model=minlm"]  # a typo of an option stays for Hydra


def test_a_whole_label_words_dict_replaces_the_default():
    words = normalise("eval", ["task=prompting", "task.label_words={0: ' bad', 1: ' good'}"], CONFIGS)
    assert words[1] == "++task.label_words={0: ' bad', 1: ' good'}"
    assert normalise("eval", ["task.label_words.0=' bad'"], CONFIGS) == ["task.label_words.0=' bad'"]


def test_the_flag_table_is_hydras():
    from hydra._internal.utils import get_args_parser

    assert HYDRA_FLAGS == set(get_args_parser()._option_string_actions)


@pytest.mark.parametrize("token", ["--cfg", "-c", "--cfg=job", "-m", "--multirun", "--multi", "--info", "-sc", "--version"])
def test_hydras_flags_and_their_abbreviations_are_known(token):
    assert is_hydra_flag(token)


@pytest.mark.parametrize("token", ["--epochs", "--lr=1e-4", "--r", "--c", "--resume", "-x", "--"])
def test_other_flags_are_not_hydras(token):
    assert not is_hydra_flag(token)  # "--r" and "--c" are ambiguous abbreviations, which argparse refuses too


def test_unknown_flags_take_the_value_typed_with_them():
    words = ["task=ner", "--epochs", "3", "--lr=1e-4", "--cfg", "job", "--overwrite", "seed=1", "--shift", "-2", "-m"]
    assert unknown_flags(words) == [
        UnknownFlag("--epochs", "3", 1, 2), UnknownFlag("--lr", "1e-4", 3, 1),
        UnknownFlag("--overwrite", None, 6, 1), UnknownFlag("--shift", "-2", 8, 2),
    ]
    assert without_flags(words, unknown_flags(words)) == ["task=ner", "--cfg", "job", "seed=1", "-m"]
    assert unknown_flags(["--cfg", "job", "trainer.lr=-1", "-"]) == []


SETTINGS = {"trainer.epochs": 3.0, "trainer.lr": None, "trainer.batch_size": 16, "trainer.eval_batch_size": 64,
            "task.max_length": 128, "overwrite": False, "seed": 42, "hydra.run.dir": None}
GROUPS = ["model", "task", "method", "data", "trainer", "debug"]


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (UnknownFlag("--epochs", "3", 0, 2), ["trainer.epochs=3"]),
        (UnknownFlag("--lr", "1e-4", 0, 1), ["trainer.lr=1e-4"]),
        (UnknownFlag("--method", "lora", 0, 2), ["method=lora"]),
        (UnknownFlag("--trainer.lr", "1e-4", 0, 1), ["trainer.lr=1e-4"]),
        (UnknownFlag("--batch-size", "8", 0, 2), ["trainer.batch_size=8"]),
        (UnknownFlag("--learning_rate", "2e-5", 0, 2), ["trainer.lr=2e-5"]),  # the transformers Trainer's name
        (UnknownFlag("--output_dir", "runs/a", 0, 2), ["hydra.run.dir=runs/a"]),
        (UnknownFlag("--epoch", "2", 0, 2), ["trainer.epochs=2"]),  # a near miss
        (UnknownFlag("--overwrite", None, 0, 1), ["overwrite=true"]),  # a switch
        (UnknownFlag("--max_length", None, 0, 1), ["task.max_length=VALUE"]),
        (UnknownFlag("--bogus", None, 0, 1), []),
    ],
)
def test_a_flag_suggests_the_override_it_names(flag, expected):
    assert flag_as_override(flag, SETTINGS, GROUPS) == expected


def test_a_flag_that_ends_several_settings_suggests_each():
    settings = {"trainer.batch_size": 16, "predict.batch_size": 8}
    assert flag_as_override(UnknownFlag("--batch_size", "4", 0, 2), settings, []) == [
        "trainer.batch_size=4", "predict.batch_size=4",
    ]
