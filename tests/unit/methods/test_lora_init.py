"""method.init: PiSSA and OLoRA start where the base model is, and their saved adapter (converted to
a plain LoRA) loads on the original base model with the trained outputs, head included."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from ftcli.config.schema import ModelConfig
from ftcli.methods.lora import Lora, LoraConfig
from ftcli.models.loading import build_model
from ftcli.tasks import TASKS

TOL = dict(rtol=1e-5, atol=1e-5)
INPUT = torch.randint(5, 1000, (2, 9), generator=torch.Generator().manual_seed(0))


def causal_lm():
    return build_model(ModelConfig("tiny:llama"), AutoModelForCausalLM, []).eval()


def classifier():
    return build_model(ModelConfig("tiny:gpt2"), TASKS.get("sentiment").impl.model_class(), ["neg", "pos"]).eval()


def outputs(model):
    with torch.no_grad():
        return model(input_ids=INPUT).logits


def train_a_little(model):
    """What training does to the adapter and the head: every trainable weight moves."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=gen) * 0.05)


@pytest.mark.parametrize(("init", "build"), [
    ("pissa", causal_lm), ("pissa_niter_2", causal_lm), ("olora", causal_lm), ("pissa", classifier),
], ids=["pissa-llama", "pissa_niter-llama", "olora-llama", "pissa-gpt2_classifier"])
def test_starts_as_the_original_model_and_saves_a_lora_that_loads_on_the_original_base(tmp_path, init, build):
    method, cfg = Lora(), LoraConfig(init=init, dropout=0.0, target_modules="all-linear")
    original = outputs(build())
    model = method.apply(build(), cfg, [] if build is causal_lm else ["score"]).eval()
    torch.testing.assert_close(outputs(model), original, **TOL)  # base residual + adapter = the original weight
    train_a_little(model)
    trained = outputs(model)
    assert not torch.allclose(trained, original, **TOL)
    method.save(model, tmp_path, cfg)
    reloaded = method.load(build(), tmp_path).eval()  # on the original weights, as eval and export build it
    torch.testing.assert_close(outputs(reloaded), trained, **TOL)
    torch.testing.assert_close(outputs(method.merge(reloaded)), trained, **TOL)


def test_default_init_is_saved_as_it_is(tmp_path):
    method, cfg = Lora(), LoraConfig(dropout=0.0)
    model = method.apply(causal_lm(), cfg, []).eval()
    torch.testing.assert_close(outputs(model), outputs(causal_lm()), **TOL)
    train_a_little(model)
    method.save(model, tmp_path, cfg)
    assert '"r": 8' in (tmp_path / "adapter_config.json").read_text()  # not doubled by a conversion


def test_olora_on_conv1d_layers_is_refused():
    from ftcli.errors import ModelError

    with pytest.raises(ModelError, match="method.init=olora: PEFT's OLoRA does not handle the transposed Conv1D"):
        Lora().apply(classifier(), LoraConfig(init="olora"), ["score"])


def test_pissa_with_dora_is_refused():
    assert LoraConfig(init="pissa", use_dora=True).validate()[0].startswith(
        "method.init=pissa with method.use_dora=true")
