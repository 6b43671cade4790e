"""Layer-wise learning-rate decay: each optimiser group's rate is the closed form lr·d^(L−i) for
layer i of L, lr·d^(L+1) for the embeddings and lr for the rest, read off the parameter names of
plain and PEFT-wrapped encoders, decoders and encoder-decoders, and times the method's own factor."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from ftcli.config.schema import TrainerConfig
from ftcli.engine.add_ons.compose import training_setup
from ftcli.engine.add_ons.layer_decay import layer_factors
from ftcli.engine.optim import build_optimizer
from ftcli.engine.step import ModelLoss
from ftcli.errors import ConfigError
from ftcli.methods import METHODS, head_modules
from ftcli.models.tiny import tiny_config

LR, D = 1e-3, 0.5


def build(auto, arch: str, method: str = "full", **settings):
    torch.manual_seed(0)
    model = auto.from_config(tiny_config(arch, **({"num_labels": 2} if auto is AutoModelForSequenceClassification
                                                  else {})))
    entry = METHODS.get(method)
    cfg = entry.config_cls(**settings)
    return entry.impl.apply(model, cfg, head_modules(model)), entry.impl.lr_scale(cfg)


def rates(model, lr_scale) -> dict[str, float]:
    """Each trainable parameter's learning rate, as the optimiser's groups hold it."""
    trainer = TrainerConfig(layer_decay=D)
    _, scale = training_setup(ModelLoss(), trainer, "sentiment", model, lr_scale)
    optimizer = build_optimizer(model, trainer, LR, scale)
    by_param = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    return {name: by_param[id(p)] for name, p in model.named_parameters() if p.requires_grad}


def expected(name: str, powers: dict[str, int]) -> float:
    """lr·D^k for the first prefix of `powers` found in `name` (k = 0 for none of them)."""
    return LR * D ** next((k for prefix, k in powers.items() if prefix in name), 0)


# L = 2: layer 0 at d², layer 1 at d, embeddings at d³; pooler, final norm and head at lr
BERT = {"bert.embeddings.": 3, "encoder.layer.0.": 2, "encoder.layer.1.": 1}
GPT2 = {"transformer.wte.": 3, "transformer.wpe.": 3, "transformer.h.0.": 2, "transformer.h.1.": 1}
LLAMA = {"model.embed_tokens.": 3, "model.layers.0.": 2, "model.layers.1.": 1}
T5 = {"shared.": 5, "encoder.block.0.": 4, "encoder.block.1.": 3, "decoder.block.0.": 2, "decoder.block.1.": 1}


@pytest.mark.parametrize("auto, arch, powers", [
    (AutoModelForSequenceClassification, "bert", BERT),
    (AutoModelForSequenceClassification, "gpt2", GPT2),
    (AutoModelForCausalLM, "llama", LLAMA),  # its untied lm_head is the head: lr
    (AutoModelForSeq2SeqLM, "t5", T5),  # one stack of 4: the encoder's 2 layers, then the decoder's
], ids=["bert", "gpt2", "llama", "t5"])
def test_full_fine_tuning_gives_each_layer_its_closed_form_rate(auto, arch, powers):
    model, scale = build(auto, arch)
    got = rates(model, scale)
    assert got == {name: pytest.approx(expected(name, powers)) for name in got}
    assert {round(lr / LR, 6) for lr in got.values()} >= {round(D ** k, 6) for k in powers.values()}


def test_lora_plus_trains_each_b_at_its_ratio_times_its_layers_rate():
    model, scale = build(AutoModelForSequenceClassification, "bert", "lora", loraplus_lr_ratio=16.0)
    got = rates(model, scale)
    ratio = {name: 16.0 if "lora_B" in name else 1.0 for name in got}
    assert got == {name: pytest.approx(expected(name, BERT) * ratio[name]) for name in got}
    assert got["base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.default.weight"] == \
        pytest.approx(LR * 16 * D ** 2)
    assert got["base_model.model.classifier.modules_to_save.default.weight"] == pytest.approx(LR)


def test_virtual_tokens_are_new_parameters_at_the_full_rate():
    model, scale = build(AutoModelForSequenceClassification, "gpt2", "prompt_tuning")
    got = rates(model, scale)
    assert got == {"base_model.score.modules_to_save.default.weight": pytest.approx(LR),
                   "prompt_encoder.default.embedding.weight": pytest.approx(LR)}


def test_a_model_without_numbered_layers_is_refused():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
    assert layer_factors((n for n, _ in model.named_parameters()), D) is None
    with pytest.raises(ConfigError, match=r"trainer.layer_decay=0.5: no transformer layers found among the parameter "
                                          r"names of this Sequential"):
        training_setup(ModelLoss(), TrainerConfig(layer_decay=D), "sentiment", model, None)
