"""Prefix tuning fails fast, with alternatives, on models that cannot take `past_key_values`.

PEFT hands the prefix to the model as `past_key_values`. On a model whose forwards do not take
them PEFT itself fails, at wrap time for DistilBERT ("Please specify `token_dim`") or at the first
batch for DeBERTa-v2 ("Model does not support past key values"); ftcli stops before either.
"""

from __future__ import annotations

import inspect

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

    from ftcli.models.sources import embedded_tokenizer_path

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


def prefix_changes_logits(model, batch) -> bool:
    """Wrap `model` for prefix tuning and tell whether a new random prefix changes its logits."""
    wrapped = METHODS.get("prefix_tuning").impl.apply(model, PrefixTuningConfig(num_virtual_tokens=5),
                                                      head_modules(model)).eval()
    with torch.no_grad():
        before = wrapped(**batch).logits
        wrapped.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
        after = wrapped(**batch).logits
    return bool((after - before).abs().max() > 1e-4)


@pytest.mark.parametrize("arch", ["tiny_bert", "tiny_gpt2"])
def test_prefix_check_passes_models_that_take_a_prefix(request, arch, batch):
    """BERT's classifier forward has no past_key_values, but its backbone's does; GPT-2's has both."""
    model = request.getfixturevalue(arch)
    check_prefix_support(model)
    assert prefix_changes_logits(model, batch)  # the prefix reaches the attention


def test_the_cache_argument_is_found_under_either_name(tiny_bert):
    """transformers names the per-layer cache `past_key_values` or, from 5.24 on, `cache`."""
    from torch import nn

    from ftcli.methods.prefix_cache import cache_argument

    class OldStyle(nn.Module):
        def forward(self, input_ids=None, past_key_values=None):
            return input_ids

    class NewStyle(nn.Module):
        def forward(self, input_ids=None, cache=None):
            return input_ids

    assert cache_argument(OldStyle()) == "past_key_values"
    assert cache_argument(NewStyle()) == "cache"
    assert cache_argument(nn.Linear(2, 2)) is None
    assert cache_argument(tiny_bert.bert) in ("past_key_values", "cache")


def test_a_backbone_without_the_old_name_still_gets_the_prefix(batch):
    """A backbone whose forward takes only `cache` and rejects `past_key_values` (as after the alias
    is removed) receives the prefix through it, so the prefix changes the logits."""
    from transformers import BertForSequenceClassification, BertModel

    from ftcli.models.tiny import tiny_config

    inner = "cache" if "cache" in inspect.signature(BertModel.forward).parameters else "past_key_values"

    class CacheOnly(BertModel):
        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, cache=None, **kwargs):
            if "past_key_values" in kwargs:
                raise TypeError("past_key_values is no argument of this model")
            return super().forward(input_ids=input_ids, attention_mask=attention_mask,  # under the installed name
                                   token_type_ids=token_type_ids, **{inner: cache}, **kwargs)

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config("bert", num_labels=2))
    model.bert = CacheOnly(model.config, add_pooling_layer=True)
    assert prefix_changes_logits(model, batch)


def test_a_copy_of_an_adapted_model_runs_its_own_weights(tiny_bert, batch):
    """The forward that takes past_key_values is bound to its module, so a deep copy uses the copy's weights."""
    import copy

    from ftcli.methods.prefix_cache import accept_past_key_values

    accept_past_key_values(tiny_bert)
    twin = copy.deepcopy(tiny_bert)
    with torch.no_grad():
        twin.bert.embeddings.word_embeddings.weight.zero_()
        assert not torch.equal(twin(**batch).logits, tiny_bert(**batch).logits)
