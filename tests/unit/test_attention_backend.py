"""model.attn_implementation: which kernel the model is built with, and packed examples kept apart on each."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from ftcli.config.schema import AttnImplementation, ModelConfig
from ftcli.models import attention_backend
from ftcli.models.loading import build_model


def tiny(arch: str, attention: str, **config) -> torch.nn.Module:
    cfg = ModelConfig(f"tiny:{arch}", attn_implementation=AttnImplementation(attention))
    return build_model(cfg, AutoModelForCausalLM, [], **config).eval()


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_a_named_implementation_is_the_one_built(attention):
    assert tiny("llama", attention).config._attn_implementation == attention


def test_auto_leaves_the_choice_to_transformers_without_flash_attention(monkeypatch):
    monkeypatch.setattr(attention_backend, "flash_attention_runs", lambda: False)
    assert attention_backend.resolved(ModelConfig("tiny:llama")) is None
    assert tiny("llama", "auto").config._attn_implementation == "sdpa"


def test_auto_takes_flash_attention_where_it_runs(monkeypatch):
    monkeypatch.setattr(attention_backend, "flash_attention_runs", lambda: True)
    assert attention_backend.resolved(ModelConfig("tiny:llama")) == "flash_attention_2"


def test_flash_attention_is_refused_with_the_config_where_it_cannot_run(monkeypatch):
    monkeypatch.setattr(attention_backend, "flash_attention_runs", lambda: False)
    cfg = ModelConfig("tiny:llama", attn_implementation=AttnImplementation.flash_attention_2)
    (problem,) = attention_backend.attention_problems(cfg)
    assert problem.startswith("model.attn_implementation=flash_attention_2 needs the flash-attn package and a CUDA GPU")
    assert attention_backend.attention_problems(ModelConfig("tiny:llama")) == []


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_packed_examples_never_attend_to_each_other(arch, attention):
    """One padding-free row of three examples (position ids restarting at 0, no attention mask, no KV
    cache: how task.packing batches) gives each example the logits it has alone."""
    model = tiny(arch, attention, use_cache=False)
    gen = torch.Generator().manual_seed(0)
    examples = [torch.randint(5, 1000, (1, n), generator=gen) for n in (5, 8, 3)]
    packed = torch.cat(examples, dim=1)
    positions = torch.cat([torch.arange(e.shape[1]) for e in examples]).unsqueeze(0)
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=positions).logits[0]
        alone = torch.cat([model(input_ids=e).logits[0] for e in examples])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
