"""Tests of zero/few-shot prompting: prompts, demonstrations, label-word log-likelihoods, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ftcli.config.schema import DataConfig
from ftcli.engine.word_scores import word_log_likelihoods
from ftcli.errors import ConfigError, DataError, ModelError
from ftcli.tasks.prompting import PromptingConfig
from ftcli.tasks.scorers import SCORERS

TASK = SCORERS.get("prompting").impl
TRAIN = [{"text": f"train {i}", "label": "pos" if i % 2 else "neg"} for i in range(6)]
ROWS = [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": "neg"}]


def tiny(arch: str):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from ftcli.models.tiny import tiny_config

    torch.manual_seed(0)
    config = tiny_config(arch)
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    return auto.from_config(config).eval()


def manual_causal(model, context: list[int], word: list[int]) -> float:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + word])).logits[0]
    log_probs = torch.log_softmax(logits, -1)
    return sum(log_probs[len(context) - 1 + j, token].item() for j, token in enumerate(word))


def manual_seq2seq(model, context: list[int], word: list[int]) -> float:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context]), labels=torch.tensor([word])).logits[0]
    log_probs = torch.log_softmax(logits, -1)
    return sum(log_probs[j, token].item() for j, token in enumerate(word))


CONTEXTS = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15]]
WORDS = [[20], [21, 22, 23], [24, 25]]


@pytest.mark.parametrize("arch", ["gpt2", "llama", "t5"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_word_scores_equal_one_sequence_at_a_time(arch, batch_size):
    model = tiny(arch)
    manual = manual_seq2seq if arch == "t5" else manual_causal
    expected = np.array([[manual(model, c, w) for w in WORDS] for c in CONTEXTS])
    got = word_log_likelihoods(model, CONTEXTS, WORDS, batch_size)
    assert got.shape == (3, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)  # padding changes nothing


def test_zero_shot_prompts_fill_the_template():
    task = PromptingConfig(template="Review: {text}\nSentiment:")
    prompts = TASK.prompts(ROWS, "v.jsonl", task, DataConfig(), ["neg", "pos"], None, 42)
    assert prompts.texts == ["Review: good film\nSentiment:", "Review: bad film\nSentiment:"]
    assert prompts.references == [1, 0] and prompts.words == [" neg", " pos"]


def test_few_shot_demonstrations_are_seeded_shared_and_solved():
    task = PromptingConfig(template="{text} =", shots=2, shot_separator=" | ", label_words={"neg": " no", "pos": " yes"})
    prompts = TASK.prompts(ROWS, "v", task, DataConfig(), ["neg", "pos"], TRAIN, 42)
    again = TASK.prompts(ROWS, "v", task, DataConfig(), ["neg", "pos"], TRAIN, 42)
    demos = prompts.texts[0][: -len("good film =")]
    assert prompts.texts == again.texts and prompts.texts[1] == demos + "bad film ="
    parts = demos.split(" | ")[:-1]
    assert len(parts) == 2
    for part in parts:
        i = int(part.split()[1])
        assert part == f"train {i} = " + ("yes" if i % 2 else "no")
    assert prompts.words == [" no", " yes"]


def test_label_set_comes_from_label_words_then_data_then_train():
    assert TASK.label_names(None, PromptingConfig(label_words={"b": " b", "a": " a"}), DataConfig()) == ["b", "a"]
    assert TASK.label_names(None, PromptingConfig(), DataConfig(label_names=["x", "y"])) == ["x", "y"]
    assert TASK.label_names(TRAIN, PromptingConfig(), DataConfig()) == ["neg", "pos"]
    with pytest.raises(ConfigError, match="label set"):
        TASK.label_names(None, PromptingConfig(), DataConfig())


@pytest.mark.parametrize(("rows", "kwargs", "error", "message"), [
    ([{"review": "x", "label": "pos"}], {}, DataError, "record 0: task.template needs the column 'text'"),
    ([{"text": "x", "label": "meh"}], {}, DataError, "record 0 has the label 'meh'"),
    (ROWS, {"shots": 1}, ConfigError, "no training split"),
])
def test_bad_input_is_named(rows, kwargs, error, message):
    with pytest.raises(error, match=message):
        TASK.prompts(rows, "v.jsonl", PromptingConfig(**kwargs), DataConfig(), ["neg", "pos"], None, 0)


def test_encoders_are_refused_and_language_models_picked():
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from ftcli.models.tiny import tiny_config

    assert TASK.model_class(tiny_config("gpt2")) is AutoModelForCausalLM
    assert TASK.model_class(tiny_config("llama")) is AutoModelForCausalLM
    assert TASK.model_class(tiny_config("t5")) is AutoModelForSeq2SeqLM
    with pytest.raises(ModelError, match="encoder"):
        TASK.model_class(tiny_config("bert"))


@pytest.mark.parametrize(("settings", "problem"), [
    ({"template": "no field"}, "no {column} field"),
    ({"template": "{text"}, "not a valid template"),
    ({"shots": -1}, "task.shots=-1"),
])
def test_config_problems(settings, problem):
    assert any(problem in p for p in PromptingConfig(**settings).validate())


def test_typed_escapes_become_newlines():
    task = PromptingConfig(template="Review: {text}\\nSentiment:", shots=1, shot_separator="\\n\\n")
    prompts = TASK.prompts(ROWS[:1], "v", task, DataConfig(), ["neg", "pos"], TRAIN, 0)
    assert prompts.texts[0].endswith("\n\nReview: good film\nSentiment:") and "\\" not in prompts.texts[0]
