"""Every registered method answers the `Method` hooks, consistently with what it declares."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from ftcli.errors import ModelError
from ftcli.methods import METHODS
from ftcli.methods.base import MethodBase
from ftcli.methods.lora import LoraConfig
from ftcli.methods.mixed import MixedConfig
from ftcli.methods.prompt import PrefixTuningConfig, PromptTuningConfig

PROMPT_LEARNING = {"prompt_tuning", "p_tuning", "prefix_tuning"}
NAMES = METHODS.names()


def settings(name: str):
    """The method's default settings, with few virtual tokens so they fit the tiny model."""
    cfg = METHODS.get(name).config_cls()
    if hasattr(cfg, "num_virtual_tokens"):
        cfg.num_virtual_tokens = 4
    return cfg


@pytest.mark.parametrize("name", NAMES)
def test_every_method_has_the_base_hooks(name):
    method = METHODS.get(name).impl
    assert isinstance(method, MethodBase)
    assert method.artifact in ("model", "adapter")
    assert isinstance(method.mergeable, bool) and isinstance(method.prompt_learning, bool)


@pytest.mark.parametrize("name", NAMES)
def test_virtual_tokens_only_for_prompt_learning(name):
    method, cfg = METHODS.get(name).impl, settings(name)
    assert method.prompt_learning == (name in PROMPT_LEARNING)
    assert method.virtual_tokens(cfg) == (4 if method.prompt_learning else 0)
    assert not (method.prompt_learning and method.mergeable)  # virtual tokens are no weight to fold in


@pytest.mark.parametrize("name", NAMES)
def test_one_learning_rate_by_default(name):
    assert METHODS.get(name).impl.lr_scale(settings(name)) is None


def test_mixed_answers_for_its_parts():
    mixed = METHODS.get("mixed").impl
    assert not mixed.prompt_learning  # its parts are asked one by one (`MethodConfig.parts`)
    with_prefix = MixedConfig(components=["lora", "prefix_tuning"], prefix_tuning=PrefixTuningConfig(num_virtual_tokens=7))
    with_prompt = MixedConfig(components=["adapter", "prompt_tuning"], prompt_tuning=PromptTuningConfig(num_virtual_tokens=3))
    assert mixed.virtual_tokens(with_prefix) == 7 and mixed.virtual_tokens(with_prompt) == 3
    assert mixed.virtual_tokens(MixedConfig()) == 0
    assert with_prefix.parts() == ["lora", "prefix_tuning"] and LoraConfig().parts() == ["lora"]

    loraplus = MixedConfig(lora=LoraConfig(loraplus_lr_ratio=16))
    scale = mixed.lr_scale(loraplus)
    assert scale is not None and scale("base.layer.0.query.lora_B.default.weight") == 16
    assert scale("base.layer.0.query.lora_A.default.weight") == 1.0
    assert mixed.lr_scale(MixedConfig(components=["adapter", "prefix_tuning"], lora=LoraConfig(loraplus_lr_ratio=16))) is None


@pytest.mark.parametrize("name", NAMES)
def test_merge_matches_the_declaration(name, tiny_bert, batch, tmp_path):
    method, cfg = METHODS.get(name).impl, settings(name)
    model = method.apply(tiny_bert, cfg, ["classifier"]).eval()
    if not method.mergeable:
        with pytest.raises(ModelError, match="cannot be merged into plain weights"):
            method.merge(model)
        return
    with torch.no_grad():
        for param_name, param in model.named_parameters():  # move the adapter off its identity start
            if param.requires_grad and "classifier" not in param_name:
                param.add_(torch.randn_like(param) * 0.1)
        before = model(**batch).logits
        merged = method.merge(model)
        after = merged(**batch).logits
    if method.artifact == "model":
        assert merged is model  # its weights are the model's own
    else:
        assert not any("lora_" in n or "ia3_" in n for n, _ in merged.named_parameters())
        assert type(merged).__name__ == "BertForSequenceClassification"
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    merged.save_pretrained(tmp_path)  # what `export merge=true` writes loads as a plain model, head included
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, before, rtol=1e-4, atol=1e-4)
