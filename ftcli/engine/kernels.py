"""Fused training kernels for the model's own layers (`trainer.kernels`).

`liger`: Liger Kernel's Triton kernels (Hsu et al. 2024) swapped into a supported architecture's
modules (RMSNorm, rotary embedding, SwiGLU MLP, and a fused linear cross-entropy that never
materialises the logits, for causal LMs only: it replaces their forward pass), applied to the
`transformers` model before any adapter wraps it, with
`liger_kernel.transformers._apply_liger_kernel_to_instance`. Liger patches the architecture's
module functions (rotary embedding, norm and MLP classes) process-wide as well as the instance. The weights and the state dict stay
the same, so the run saves and reloads as without it. Triton kernels need a CUDA GPU; without
one, without the package, or for an architecture Liger has no kernels for, the run is refused
before training, naming the fix (or the architectures it supports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftcli.config.schema import Kernels, TrainerConfig
from ftcli.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

INSTALL_HINT = "pip install 'ftcli[liger]'"


def kernel_problems(cfg: TrainerConfig) -> list[str]:
    """What keeps `trainer.kernels` from running on this machine (checked with the config)."""
    if cfg.kernels is Kernels.none:
        return []
    from importlib.util import find_spec

    import torch

    problems = []
    if not torch.cuda.is_available():
        problems.append("trainer.kernels=liger runs Triton kernels, which need a CUDA GPU; this machine has none: "
                        "drop trainer.kernels or run on a GPU")
    if find_spec("liger_kernel") is None or find_spec("triton") is None:
        problems.append(f"trainer.kernels=liger needs liger-kernel and triton, which are not installed: {INSTALL_HINT}")
    return problems


def apply_kernels(model: PreTrainedModel, cfg: TrainerConfig) -> None:
    """Swap the chosen kernels into `model` in place (a `transformers` model, not yet adapted)."""
    if cfg.kernels is Kernels.none:
        return
    problems = kernel_problems(cfg)
    if problems:
        raise ConfigError(problems)
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN, _apply_liger_kernel_to_instance

    model_type = model.config.model_type
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        raise ConfigError(
            f"trainer.kernels=liger: Liger has no kernels for {model_type} models",
            hint=f"drop trainer.kernels; Liger supports {', '.join(sorted(MODEL_TYPE_TO_APPLY_LIGER_FN))}",
        )
    # the fused linear cross-entropy replaces the whole forward pass with a causal LM's: only for those
    causal_lm = type(model).__name__.endswith("ForCausalLM")
    _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=causal_lm)
