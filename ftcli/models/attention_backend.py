"""Which attention implementation a model is built with (`model.attn_implementation`).

`auto` takes flash-attention 2 where it runs (the `flash_attn` package, a CUDA GPU with bf16,
which `trainer.precision=auto` then trains in), else leaves the choice to `transformers`: SDPA
for the models that have it, eager attention for the rest. A name picks that kernel, and one the
model or the machine cannot run is refused before any weights load.

Packed batches (`task.packing=true`: one row of several examples whose position ids restart at
0) stay apart on every backend: with no attention mask, `transformers`' mask builder reads the
restarts from the position ids and builds a block-diagonal causal mask for SDPA and eager, and
flash-attention 2 turns the same restarts into `cu_seqlens` for its variable-length kernel.
"""

from __future__ import annotations

from typing import Any, Optional

from ftcli.config.schema import AttnImplementation, ModelConfig

FLASH = AttnImplementation.flash_attention_2


def flash_attention_runs() -> bool:
    """Whether flash-attention 2 can run here: the package, and a CUDA GPU with bf16."""
    from importlib.util import find_spec

    import torch

    return find_spec("flash_attn") is not None and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def attention_problems(cfg: ModelConfig) -> list[str]:
    """What keeps the named implementation from running on this machine (checked with the config)."""
    if cfg.attn_implementation is not FLASH or flash_attention_runs():
        return []
    return ["model.attn_implementation=flash_attention_2 needs the flash-attn package and a CUDA GPU with bf16 "
            "(pip install flash-attn --no-build-isolation on the GPU machine); use auto, sdpa or eager here"]


def resolved(cfg: ModelConfig) -> Optional[str]:
    """The name `from_pretrained`/`from_config` take as `attn_implementation`; None: `transformers`'
    own choice (SDPA where the model has it, else eager)."""
    if cfg.attn_implementation is AttnImplementation.auto:
        return FLASH.value if flash_attention_runs() else None
    return cfg.attn_implementation.value


def loading_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    name = resolved(cfg)
    return {} if name is None else {"attn_implementation": name}
