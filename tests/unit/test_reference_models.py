"""The reference model of every method is the untouched base model: an adapter switched off, or
the base loaded again for methods that train the base weights."""

from __future__ import annotations

import pytest
import torch

from ftcli.config.schema import ModelConfig
from ftcli.engine.frozen import FrozenModels
from ftcli.methods import METHODS, head_modules
from ftcli.models.loading import build_model
from ftcli.tasks.scored_answers import logps

TINY = ModelConfig("tiny:llama")
SWITCHED = ["lora", "ia3", "ln_tuning", "prompt_tuning", "p_tuning", "prefix_tuning", "adapter", "mixed"]


def base_model():
    from transformers import AutoModelForCausalLM

    return build_model(TINY, AutoModelForCausalLM, []).eval()


def batch():
    ids = torch.tensor([[1, 5, 9, 12, 7, 3], [1, 8, 4, 2, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, 12, 7, 3], [-100, -100, 4, 2, -100, -100]])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def adapted(name):
    entry = METHODS.get(name)
    model = base_model()
    cfg = entry.config_cls()
    if name == "mixed":
        cfg.components = ["lora", "adapter", "prompt_tuning"]
    trained = entry.impl.apply(model, cfg, head_modules(model))
    torch.manual_seed(0)
    with torch.no_grad():  # move every trained weight, so the adapted model differs from its base
        for param in trained.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.5)
    return entry.impl, trained.train()


@pytest.mark.parametrize("name", SWITCHED)
def test_switching_the_adaptation_off_gives_the_base_models_log_probabilities(name):
    method, model = adapted(name)
    expected = logps(base_model(), batch())[0]
    with torch.no_grad():
        before = logps(model.eval(), batch())[0]
    model.train()
    assert not torch.allclose(before, expected, atol=1e-4), "the perturbed adapter should change the model"
    frozen = FrozenModels(method.switch_off, lambda: pytest.fail("a switchable method loads no second copy"))
    with frozen.reference(model) as reference:
        assert reference is model and not model.training
        got = logps(reference, batch())[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert model.training  # the mode it was in comes back
    with torch.no_grad():
        torch.testing.assert_close(logps(model.eval(), batch())[0], before)  # and so does the adaptation


@pytest.mark.parametrize("name", ["full", "freeze"])
def test_a_method_that_trains_the_base_weights_loads_the_base_again_once(name):
    method, model = adapted(name)
    loads = []

    def load_base():
        loads.append(1)
        return base_model()

    frozen = FrozenModels(method.switch_off, load_base)
    for _ in range(2):
        with frozen.reference(model) as reference:
            assert reference is not model and not any(p.requires_grad for p in reference.parameters())
            torch.testing.assert_close(logps(reference, batch())[0], logps(base_model(), batch())[0])
    assert len(loads) == 1
    frozen.release()
    with frozen.reference(model):
        pass
    assert len(loads) == 2


def test_no_reference_is_an_error_that_says_so():
    from ftcli.errors import ModelError

    with pytest.raises(ModelError, match="no reference model"), FrozenModels().reference(base_model()):
        pass
