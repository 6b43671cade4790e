"""Tests of ftcli.argv: the command-line conveniences rewritten before Hydra sees the words."""

from __future__ import annotations

from pathlib import Path

from ftcli.argv import normalise

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
