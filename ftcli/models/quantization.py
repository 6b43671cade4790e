"""Loading the frozen base weights in 4 or 8 bits with bitsandbytes (QLoRA), and what that allows.

`model.load_in_4bit=true` loads every linear layer of the backbone as NF4 (double-quantised, bf16
compute by default: Dettmers et al. 2023, "QLoRA"); `model.load_in_8bit=true` as LLM.int8(). The
quantised weights cannot be trained, so only methods that train new parameters on top of them
(LoRA and its variants, IA3, the prompt methods, adapters) run on such a model; `full`, `freeze`
and `bitfit` train the base weights themselves and are refused. bitsandbytes' kernels need a CUDA
GPU; both that and the library are checked with the config, before any weights load.

PEFT's `prepare_model_for_kbit_training` readies the loaded model: every base weight frozen, the
norms and the output layer in float32, and the input embeddings' output requiring grad so that
gradient checkpointing has a graph to recompute. A run's `config.yaml` keeps the settings, so
`eval`, `predict` and an unmerged `export` load the base quantised again, as it trained.
`export merge=true` loads the base quantised, as it trained, dequantises it (to float32, the
dtype ftcli loads in) and merges the adapter there (`dequantized`), on a GPU like training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ftcli.config.schema import ComputeDtype, ModelConfig
from ftcli.errors import ConfigError

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig, PreTrainedModel

INSTALL_HINT = "pip install 'ftcli[qlora]'"


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def has_bitsandbytes() -> bool:
    from importlib.util import find_spec

    return find_spec("bitsandbytes") is not None


def quantization_problems(cfg: ModelConfig, base_training: list[str]) -> list[str]:
    """What keeps `cfg`'s 4/8-bit loading from running here, and the methods it cannot train
    (`base_training`: those of the run's methods that train the base weights in place, whose
    artifact is a whole `model/`). Checked with the config."""
    bits = cfg.quantized_bits
    if bits is None:
        return []
    setting = f"model.load_in_{bits}bit"
    problems = []
    if not has_cuda():
        problems.append(f"{bits}-bit loading needs a CUDA GPU; this machine has none: drop {setting} or run on a GPU")
    if not has_bitsandbytes():
        problems.append(f"{setting}=true needs bitsandbytes, which is not installed: {INSTALL_HINT}")
    for name in base_training:
        problems.append(
            f"method={name} trains the base weights themselves, and {setting} loads them quantised and frozen; "
            "use a method that trains new weights on top (method=lora, ia3, adapter, prompt_tuning, prefix_tuning) "
            f"or drop {setting}"
        )
    return problems


def require(feature: str) -> None:
    """Raise the error of a bitsandbytes feature (`feature`: the setting) that cannot run here."""
    if not has_bitsandbytes():
        raise ConfigError(f"{feature} needs bitsandbytes, which is not installed", hint=INSTALL_HINT)
    if not has_cuda():
        raise ConfigError(f"{feature} needs a CUDA GPU; this machine has none", hint=f"drop {feature} or run on a GPU")


def bnb_config(cfg: ModelConfig) -> Optional[BitsAndBytesConfig]:
    """transformers' `BitsAndBytesConfig` for the settings, or None when the model loads unquantised."""
    bits = cfg.quantized_bits
    if bits is None:
        return None
    require(f"model.load_in_{bits}bit=true")
    import torch
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    dtypes = {ComputeDtype.bf16: torch.bfloat16, ComputeDtype.fp16: torch.float16, ComputeDtype.fp32: torch.float32}
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.bnb_4bit_quant_type.value,
        bnb_4bit_compute_dtype=dtypes[cfg.bnb_4bit_compute_dtype],
        bnb_4bit_use_double_quant=cfg.bnb_4bit_use_double_quant,
    )


def loading_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    """What `from_pretrained` takes for quantised loading: the config, and the whole model on this
    process's GPU (bitsandbytes quantises as the weights are placed)."""
    quantization = bnb_config(cfg)
    if quantization is None:
        return {}
    from accelerate import PartialState

    return {"quantization_config": quantization, "device_map": {"": PartialState().device}}


def is_quantized(model: Any) -> bool:
    """Whether a `transformers` model holds bitsandbytes weights (its quantizer marks it so)."""
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def prepare_for_training(model: PreTrainedModel, gradient_checkpointing: bool) -> PreTrainedModel:
    """PEFT's preparation of a quantised model for training an adapter on it (a no-op otherwise)."""
    if not is_quantized(model):
        return model
    from peft import prepare_model_for_kbit_training

    prepared: PreTrainedModel = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    return prepared


def dequantized(model: PreTrainedModel) -> PreTrainedModel:
    """A model loaded in 4 or 8 bits with its weights dequantised to float32 (itself otherwise), for
    `export merge=true`.

    The adapter was trained on the rounded weights Q(W), so it is merged into those: the merged
    folder computes what the trained model computed. Merging into the original full-precision W
    instead would add the rounding error the adapter learned to work with (and undo LoftQ, whose
    adapter corrects exactly that error); requantising W + BA would round most of the update away.
    """
    if not is_quantized(model):
        return model
    plain: PreTrainedModel = model.dequantize()
    return plain
