"""Tiny random models built offline from config, for tests and smoke runs (`model=tiny_bert`).

They reuse the tokenizer of the embedded MiniLM so tokenisation is real, and their weights are
drawn under a fixed seed, independent of the run's seed, so a run directory that stores only an
adapter can rebuild exactly the same base model later.
"""

from __future__ import annotations

from typing import Any

TINY_SEED = 1234

TINY_ARCHITECTURES = {
    "bert": dict(
        model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=512,
    ),
}


def tiny_config(arch: str, **overrides: Any) -> Any:
    """A `transformers` config for a tiny model of architecture `arch`."""
    from transformers import AutoConfig

    from ftcli.modeling import embedded_tokenizer_path

    from_vocab = AutoConfig.from_pretrained(embedded_tokenizer_path())
    settings = dict(TINY_ARCHITECTURES[arch])
    model_type = settings.pop("model_type")
    return AutoConfig.for_model(model_type, vocab_size=from_vocab.vocab_size, **settings, **overrides)
