"""Prefix tuning fails fast, with alternatives, on models that cannot take `past_key_values`.

PEFT hands the prefix to the model as `past_key_values`. On a model whose forwards do not take
them PEFT itself fails, at wrap time for DistilBERT ("Please specify `token_dim`") or at the first
batch for DeBERTa-v2 ("Model does not support past key values"); ftcli stops before either.
"""

from __future__ import annotations

import pytest
import torch

from ftcli.errors import ModelError
from ftcli.methods import METHODS, head_modules
from ftcli.methods.prompt import PrefixTuningConfig, PromptTuningConfig, PTuningConfig, check_prefix_support

NO_PAST_KEY_VALUES = {  # tiny configs of architectures whose forwards take no past_key_values
    "distilbert": dict(dim=32, n_layers=2, n_heads=2, hidden_dim=37),
    "deberta-v2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
}


def tiny_without_past(model_type: str):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from ftcli.modeling import embedded_tokenizer_path

    vocab = AutoConfig.from_pretrained(embedded_tokenizer_path()).vocab_size
    config = AutoConfig.for_model(
        model_type, vocab_size=vocab, max_position_embeddings=512, num_labels=2,
        **NO_PAST_KEY_VALUES[model_type],
    )
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config).eval()


@pytest.mark.parametrize("model_type", NO_PAST_KEY_VALUES)
def test_prefix_tuning_without_past_key_values_fails_before_peft(model_type):
    model = tiny_without_past(model_type)
    with pytest.raises(ModelError, match=rf"prefix_tuning cannot be used with this {model_type} model") as info:
        METHODS.get("prefix_tuning").impl.apply(model, PrefixTuningConfig(num_virtual_tokens=5), head_modules(model))
    assert "past_key_values" in info.value.message
    assert type(model).__name__ in info.value.message
    assert info.value.hint.startswith(f"methods that work with {model_type}: prompt_tuning, p_tuning, lora, ia3;")
    assert not hasattr(model, "peft_config")  # nothing was wrapped


@pytest.mark.parametrize("model_type", NO_PAST_KEY_VALUES)
@pytest.mark.parametrize("method, cfg", [
    ("prompt_tuning", PromptTuningConfig(num_virtual_tokens=5)),
    ("p_tuning", PTuningConfig(num_virtual_tokens=5, encoder_hidden_size=16)),
])
def test_the_suggested_prompt_methods_do_work_there(model_type, method, cfg, batch):
    """Including on DistilBERT, whose config names its sizes `dim` and `n_heads`, which PEFT does not find."""
    model = tiny_without_past(model_type)
    wrapped = METHODS.get(method).impl.apply(model, cfg, head_modules(model)).train()
    inputs = {k: v for k, v in batch.items() if k != "token_type_ids" or model_type != "distilbert"}
    wrapped(**inputs, labels=torch.tensor([0, 1, 0])).loss.backward()
    assert wrapped.prompt_encoder["default"].embedding.weight.grad is not None


def test_the_hint_says_when_lora_needs_targets():
    from transformers import AlbertConfig, AlbertForSequenceClassification

    model = AlbertForSequenceClassification(AlbertConfig(
        vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37,
    ))
    with pytest.raises(ModelError) as info:
        check_prefix_support(model)
    assert "lora (with method.target_modules), ia3 (with method.target_modules)" in info.value.hint


@pytest.mark.parametrize("arch", ["tiny_bert", "tiny_gpt2"])
def test_prefix_check_passes_models_that_take_a_prefix(request, arch, batch):
    """BERT's classifier forward has no past_key_values, but its backbone's does; GPT-2's has both."""
    model = request.getfixturevalue(arch)
    check_prefix_support(model)
    wrapped = METHODS.get("prefix_tuning").impl.apply(model, PrefixTuningConfig(num_virtual_tokens=5),
                                                      head_modules(model)).eval()
    with torch.no_grad():
        before = wrapped(**batch).logits
        wrapped.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
        after = wrapped(**batch).logits
    assert (after - before).abs().max() > 1e-4  # the prefix reaches the attention
