"""`task.max_length` against a model's position table: refused past it, the default lowered to fit."""

from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, RobertaConfig

from ftcli.errors import ConfigError
from ftcli.models.loading import fit_max_length, position_limit
from ftcli.models.tiny import tiny_config


@pytest.mark.parametrize(
    ("build", "limit"),
    [
        (lambda: AutoModelForSequenceClassification.from_config(tiny_config("bert", max_position_embeddings=64)), 64),
        (lambda: AutoModelForCausalLM.from_config(tiny_config("gpt2", n_positions=96)), 96),
        # RoBERTa's table starts after the padding id: 66 rows hold 64 positions
        (lambda: AutoModelForSequenceClassification.from_config(RobertaConfig(
            vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
            max_position_embeddings=66, pad_token_id=1)), 64),
        (lambda: AutoModelForCausalLM.from_config(tiny_config("llama")), None),  # rotary
        (lambda: AutoModelForSeq2SeqLM.from_config(tiny_config("t5")), None),  # relative
    ],
    ids=["bert", "gpt2", "roberta", "llama", "t5"],
)
def test_position_limit(build, limit):
    assert position_limit(build()) == limit


@pytest.fixture(scope="module")
def bert64():
    return AutoModelForSequenceClassification.from_config(tiny_config("bert", max_position_embeddings=64))


def test_a_length_that_fits_is_kept(bert64):
    assert fit_max_length(bert64, 64, 128) == 64


def test_a_length_set_past_the_table_is_refused(bert64):
    with pytest.raises(ConfigError, match="task.max_length=100 exceeds the 64 positions of this bert model") as info:
        fit_max_length(bert64, 100, 128)
    assert info.value.hint == "set task.max_length=64 or fewer"


def test_the_default_is_lowered_to_fit(bert64, capsys):
    assert fit_max_length(bert64, 128, 128) == 64
    assert fit_max_length(bert64, 128, 128, virtual_tokens=10) == 54
    captured = capsys.readouterr()  # the console may be on stderr after an earlier `predict output=-`
    assert "the default 128 exceeds the model's 64 positions" in captured.out + captured.err


def test_computed_positions_take_any_length():
    llama = AutoModelForCausalLM.from_config(tiny_config("llama"))
    assert fit_max_length(llama, 100_000, 1024) == 100_000
