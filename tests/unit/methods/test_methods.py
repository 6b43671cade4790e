"""Method invariants on a tiny BERT: what trains, closed-form counts, identity at init, merge."""

from __future__ import annotations

import pytest
import torch

from ftcli.errors import ModelError
from ftcli.methods import METHODS, count_parameters, head_modules
from ftcli.methods.bitfit import BitFitConfig
from ftcli.methods.freeze import FreezeConfig
from ftcli.methods.full import FullConfig
from ftcli.methods.ia3 import IA3Config
from ftcli.methods.ln_tuning import LNTuningConfig
from ftcli.methods.lora import LoraConfig
from ftcli.methods.prompt import PrefixTuningConfig, PromptInit, PromptTuningConfig

HIDDEN, LAYERS, LABELS = 32, 2, 2
HEAD = HIDDEN * LABELS + LABELS  # classifier weight + bias


def trainable_names(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_head_modules_is_the_classifier(tiny_bert):
    assert head_modules(tiny_bert) == ["classifier"]


def test_full_trains_everything(tiny_bert):
    total = sum(p.numel() for p in tiny_bert.parameters())
    model = METHODS.get("full").impl.apply(tiny_bert, FullConfig(), ["classifier"])
    counts = count_parameters(model, ["classifier"])
    assert counts.trainable == counts.total == total
    assert counts.trainable_without_head == total - HEAD


def test_freeze_trains_only_the_head(tiny_bert):
    model = METHODS.get("freeze").impl.apply(tiny_bert, FreezeConfig(), ["classifier"])
    assert trainable_names(model) == {"classifier.weight", "classifier.bias"}
    assert count_parameters(model, ["classifier"]).trainable == HEAD


def test_freeze_top_layers_adds_exactly_those_layers(tiny_bert):
    top = tiny_bert.bert.encoder.layer[-1]
    model = METHODS.get("freeze").impl.apply(tiny_bert, FreezeConfig(train_top_layers=1), ["classifier"])
    expected = HEAD + sum(p.numel() for p in top.parameters())
    assert count_parameters(model, ["classifier"]).trainable == expected
    assert all(not n.startswith("bert.encoder.layer.0.") for n in trainable_names(model))


def test_freeze_rejects_more_layers_than_the_model_has(tiny_bert):
    with pytest.raises(ModelError, match="has 2 layers"):
        METHODS.get("freeze").impl.apply(tiny_bert, FreezeConfig(train_top_layers=3), ["classifier"])


@pytest.mark.parametrize("rank", [1, 4, 8])
def test_lora_count_matches_closed_form(tiny_bert, rank):
    model = METHODS.get("lora").impl.apply(tiny_bert, LoraConfig(rank=rank), ["classifier"])
    counts = count_parameters(model, ["classifier"])
    per_module = rank * (HIDDEN + HIDDEN)  # A: r x in, B: out x r
    assert counts.trainable_without_head == LAYERS * 2 * per_module  # query and value per layer
    assert counts.trainable == LAYERS * 2 * per_module + HEAD
    names = trainable_names(model)
    assert all("lora_" in n or "classifier.modules_to_save" in n for n in names)
    assert any("classifier.modules_to_save" in n for n in names)


def test_lora_is_identity_at_init(tiny_bert, batch):
    with torch.no_grad():
        before = tiny_bert(**batch).logits
    model = METHODS.get("lora").impl.apply(tiny_bert, LoraConfig(), ["classifier"]).eval()
    with torch.no_grad():
        after = model(**batch).logits
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_lora_merged_equals_unmerged(tiny_bert, batch):
    with torch.no_grad():
        base = tiny_bert(**batch).logits
    model = METHODS.get("lora").impl.apply(tiny_bert, LoraConfig(rank=4), ["classifier"]).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
        unmerged = model(**batch).logits
        merged = model.merge_and_unload()(**batch).logits
    assert (unmerged - base).abs().max() > 1e-4  # the perturbed adapter changes the output
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)


def test_lora_unknown_target_lists_the_linear_layers(tiny_bert):
    with pytest.raises(ModelError, match=r"matched no module.*query.*value"):
        METHODS.get("lora").impl.apply(tiny_bert, LoraConfig(target_modules=["q_proj"]), ["classifier"])


def test_lora_all_linear_targets_every_backbone_linear(tiny_bert):
    model = METHODS.get("lora").impl.apply(tiny_bert, LoraConfig(rank=2, target_modules=["all-linear"]), ["classifier"])
    wrapped = {n.rsplit(".lora_A", 1)[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if ".lora_A" in n}
    assert wrapped == {"query", "key", "value", "dense"}


def test_lora_switches_reach_peft(tiny_bert):
    model = METHODS.get("lora").impl.apply(
        tiny_bert, LoraConfig(rank=4, alpha=8, use_dora=True, use_rslora=True), ["classifier"]
    )
    query = model.base_model.model.bert.encoder.layer[0].attention.self.query
    assert query.scaling["default"] == pytest.approx(8 / 4**0.5)  # rsLoRA: alpha / sqrt(rank)
    assert any("lora_magnitude_vector" in n for n, p in model.named_parameters() if p.requires_grad)  # DoRA


INTERMEDIATE = 37  # the tiny BERT's feed-forward width


def test_bitfit_trains_biases_and_head_only(tiny_bert):
    model = METHODS.get("bitfit").impl.apply(tiny_bert, BitFitConfig(), ["classifier"])
    names = trainable_names(model)
    assert names == {n for n, _ in model.named_parameters() if n.endswith(".bias")} | {"classifier.weight"}
    per_layer = 7 * HIDDEN + INTERMEDIATE  # q, k, v, attn-out, 2 LayerNorms, ffn-out; ffn-in is intermediate wide
    counts = count_parameters(model, ["classifier"])
    assert counts.trainable_without_head == HIDDEN + LAYERS * per_layer + HIDDEN  # + embedding LN, pooler
    assert counts.trainable == counts.trainable_without_head + HEAD


def test_ia3_count_matches_closed_form_and_is_identity_at_init(tiny_bert, batch):
    with torch.no_grad():
        before = tiny_bert(**batch).logits
    model = METHODS.get("ia3").impl.apply(tiny_bert, IA3Config(), ["classifier"]).eval()
    # key and value scale their outputs; both `output.dense` layers are feed-forward and scale their inputs
    per_layer = HIDDEN + HIDDEN + HIDDEN + INTERMEDIATE
    assert count_parameters(model, ["classifier"]).trainable_without_head == LAYERS * per_layer
    assert all("ia3_l" in n or "classifier.modules_to_save" in n for n in trainable_names(model))
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, before, rtol=0, atol=0)


def test_ln_tuning_trains_every_layernorm(tiny_bert, batch):
    with torch.no_grad():
        before = tiny_bert(**batch).logits
    model = METHODS.get("ln_tuning").impl.apply(tiny_bert, LNTuningConfig(), ["classifier"]).eval()
    layernorms = 1 + 2 * LAYERS
    assert count_parameters(model, ["classifier"]).trainable_without_head == layernorms * 2 * HIDDEN
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, before, rtol=0, atol=0)


def test_ln_tuning_unknown_target_lists_the_layernorms(tiny_bert):
    with pytest.raises(ModelError, match="LayerNorm layers are: LayerNorm"):
        METHODS.get("ln_tuning").impl.apply(tiny_bert, LNTuningConfig(target_modules=["ln_f"]), ["classifier"])


VIRTUAL = 5


def test_prompt_tuning_trains_one_vector_per_virtual_token(tiny_bert):
    model = METHODS.get("prompt_tuning").impl.apply(tiny_bert, PromptTuningConfig(num_virtual_tokens=VIRTUAL),
                                                    ["classifier"])
    assert count_parameters(model, ["classifier"]).trainable_without_head == VIRTUAL * HIDDEN
    assert all(p.requires_grad is False for n, p in model.named_parameters() if n.startswith("base_model.bert."))


def test_prefix_tuning_trains_keys_and_values_in_every_layer(tiny_bert):
    model = METHODS.get("prefix_tuning").impl.apply(tiny_bert, PrefixTuningConfig(num_virtual_tokens=VIRTUAL),
                                                    ["classifier"])
    assert count_parameters(model, ["classifier"]).trainable_without_head == VIRTUAL * LAYERS * 2 * HIDDEN


def test_prompt_text_init_starts_from_the_text_embeddings(tiny_bert, tokenizer):
    text = "is this good"
    ids = tokenizer(text)["input_ids"]  # PEFT tokenises with special tokens: [CLS] is this good [SEP]
    model = METHODS.get("prompt_tuning").impl.apply(
        tiny_bert, PromptTuningConfig(num_virtual_tokens=len(ids), init=PromptInit.text, init_text=text),
        ["classifier"],
    )
    expected = tiny_bert.bert.embeddings.word_embeddings.weight[ids]
    torch.testing.assert_close(model.prompt_encoder["default"].embedding.weight, expected)


def test_virtual_tokens_must_fit_the_position_table(tiny_bert):
    from ftcli.errors import ConfigError
    from ftcli.models.loading import fit_max_length

    method = METHODS.get("prompt_tuning").impl
    assert fit_max_length(tiny_bert, 500, 128, method.virtual_tokens(PromptTuningConfig(num_virtual_tokens=12))) == 500
    with pytest.raises(ConfigError, match="plus method.num_virtual_tokens=13 exceeds the 512 positions") as info:
        fit_max_length(tiny_bert, 500, 128, method.virtual_tokens(PromptTuningConfig(num_virtual_tokens=13)))
    assert info.value.hint.startswith("set task.max_length=499 or fewer")


def test_prompt_text_init_needs_text():
    assert PromptTuningConfig(init=PromptInit.text).validate() == [
        "method.init=text needs method.init_text (e.g. 'Is this review positive or negative?')"
    ]
