"""LN tuning finds RMSNorm layers too: Llama-likes and T5 have no nn.LayerNorm."""

from __future__ import annotations

import pytest

from ftcli.methods import METHODS, count_parameters
from ftcli.methods.ln_tuning import LNTuningConfig


@pytest.mark.parametrize(("arch", "auto", "norms"), [
    ("llama", "AutoModelForCausalLM", 2 * 2 + 1),  # two per layer, one final
    ("t5", "AutoModelForSeq2SeqLM", (2 * 2 + 1) + (2 * 3 + 1)),  # encoder 2 per block, decoder 3, a final each
])
def test_ln_tuning_trains_exactly_the_rms_norms(arch, auto, norms):
    import transformers

    from ftcli.models.tiny import tiny_config

    config = tiny_config(arch)
    model = getattr(transformers, auto).from_config(config)
    width = config.hidden_size if arch == "llama" else config.d_model
    adapted = METHODS.get("ln_tuning").impl.apply(model, LNTuningConfig(), [])
    assert count_parameters(adapted, []).as_dict()["trainable"] == norms * width
    assert all("norm" in name.lower() for name, p in adapted.named_parameters() if p.requires_grad)
