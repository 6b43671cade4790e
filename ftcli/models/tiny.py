"""Tiny random models built offline from config, for tests and smoke runs (`model=tiny_bert`, `tiny_gpt2`, `tiny_llama`, `tiny_t5`).

They reuse the tokenizer of the embedded MiniLM so tokenisation is real, and their weights are
drawn under a fixed seed, independent of the run's seed, so a run directory that stores only an
adapter can rebuild exactly the same base model later. Their special token ids (padding in
particular) are that tokenizer's, so a tiny GPT-2 classifier knows its padding token and finds
the last real token of each padded row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftcli.errors import ModelError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

TINY_SEED = 1234

TINY_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "bert": dict(
        model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=512,
    ),
    "gpt2": dict(  # a decoder: Conv1D projections, fused c_attn, no bias in its `score` head
        model_type="gpt2", n_embd=32, n_layer=2, n_head=2, n_inner=37, n_positions=512,
    ),
    "llama": dict(  # a Llama-shaped decoder: q/k/v/o and gate/up/down projections, 2 query heads per KV head
        model_type="llama", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=37, max_position_embeddings=512,
    ),
    "t5": dict(  # an encoder-decoder: decoding starts at [PAD] and ends at [SEP], which ends every target
        model_type="t5", d_model=32, d_ff=37, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=2,
        relative_attention_num_buckets=8, decoder_start_token_id=0, eos_token_id=102,
    ),
}
SPECIAL_TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id")


def tiny_config(arch: str, **overrides: Any) -> PretrainedConfig:
    """A `transformers` config for a tiny model of architecture `arch`."""
    from transformers import AutoConfig

    from ftcli.models.sources import embedded_tokenizer_path

    if arch not in TINY_ARCHITECTURES:
        raise ModelError(
            f"model.name_or_path=tiny:{arch}: there is no tiny {arch!r} model",
            hint=f"use one of: {', '.join(f'tiny:{name}' for name in TINY_ARCHITECTURES)}",
        )
    from_vocab = AutoConfig.from_pretrained(embedded_tokenizer_path())
    settings = dict(TINY_ARCHITECTURES[arch])
    model_type = settings.pop("model_type")
    # the tokenizer's ids, not the architecture's defaults (GPT-2's 50256 is past this vocabulary's end)
    special = {key: getattr(from_vocab, key, None) for key in SPECIAL_TOKEN_IDS}
    return AutoConfig.for_model(
        model_type, vocab_size=from_vocab.vocab_size, **{**special, **settings, **overrides}
    )
