"""`lora`: low-rank adapters through PEFT (with DoRA and rsLoRA switches), head trained and saved.

The adapter is saved in PEFT's format, so the folder loads with `PeftModel.from_pretrained`
anywhere; the task head goes in as `modules_to_save`, so a reloaded classifier never comes back
with a random head.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Optional

from ftcli.config.schema import MethodConfig
from ftcli.errors import ModelError
from ftcli.methods import lora_init
from ftcli.methods.base import METHODS
from ftcli.methods.peft_adapter import PeftMethod, linear_names, task_type, uses_conv1d

if TYPE_CHECKING:
    from pathlib import Path

    import peft
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel

# Defaults for architectures PEFT's own table lacks; PEFT's table covers the rest.
EXTRA_TARGETS = {"distilbert": ["q_lin", "v_lin"], "deberta-v2": ["query_proj", "value_proj"]}


class LoraBias(str, Enum):
    none = "none"
    all = "all"
    lora_only = "lora_only"


@dataclass
class LoraConfig(MethodConfig):
    name: str = "lora"
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    # null: the architecture's default; all-linear: every linear layer; or a list of layer names
    target_modules: Any = None
    bias: LoraBias = LoraBias.none
    use_dora: bool = False
    use_rslora: bool = False
    loraplus_lr_ratio: Optional[float] = None  # LoRA+: B trains at lr x this (the paper uses 16)
    freeze_bottom_layers: int = 0  # no LoRA in the bottom k transformer layers
    # default (B = 0) | gaussian | orthogonal | pissa | pissa_niter_<N> (fast SVD) | olora | loftq (needs model.load_in_4bit)
    init: str = "default"

    def validate(self) -> list[str]:
        problems = []
        if self.rank < 1:
            problems.append(f"method.rank={self.rank} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"method.dropout={self.dropout} must be in [0, 1)")
        targets = self.target_modules
        if isinstance(targets, list) and not targets:
            problems.append("method.target_modules is an empty list; use null for the architecture's default")
        elif not (targets is None or isinstance(targets, str)
                  or (isinstance(targets, list) and all(isinstance(t, str) for t in targets))):
            problems.append(f"method.target_modules={targets!r} must be null, all-linear or a list of layer names")
        if self.loraplus_lr_ratio is not None and self.loraplus_lr_ratio <= 0:
            problems.append(f"method.loraplus_lr_ratio={self.loraplus_lr_ratio} must be positive (16 is typical)")
        if self.freeze_bottom_layers < 0:
            problems.append(f"method.freeze_bottom_layers={self.freeze_bottom_layers} must be 0 or more")
        return problems + lora_init.init_problems(self.init, self.use_dora)

    def targets(self) -> Optional[list[str] | str]:
        """`target_modules` as PEFT takes it: "all-linear", a list of names, or None for the default."""
        targets = self.target_modules
        if targets in ("all-linear", ["all-linear"]):
            return "all-linear"
        return [targets] if isinstance(targets, str) else targets


class Lora(PeftMethod[LoraConfig]):
    default_lr = 1.0e-3
    target_hint = "set method.target_modules to some of those names, or [all-linear]"

    def peft_config(self, model: PreTrainedModel, cfg: LoraConfig, head: list[str]) -> peft.LoraConfig:
        import peft

        targets = cfg.targets()
        return peft.LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha,  # type: ignore[arg-type]  # PEFT declares int; any number scales (alpha / r)
            lora_dropout=cfg.dropout,
            target_modules=default_targets(model) if targets is None else targets,
            bias=cfg.bias.value,
            use_dora=cfg.use_dora,
            use_rslora=cfg.use_rslora,
            fan_in_fan_out=uses_conv1d(model),
            layers_to_transform=upper_layers(model, cfg.freeze_bottom_layers),
            modules_to_save=head,
            task_type=task_type(model),
            init_lora_weights=lora_init.peft_value(cfg.init),
        )

    def apply(self, model: PreTrainedModel, cfg: LoraConfig, head: list[str]) -> AdaptedModel:
        """PEFT's LoRA; LoftQ's A and B are then fitted to the quantisation error of the 4-bit base, and
        the starting adapter of an initialisation that changes the base (PiSSA, OLoRA) is kept for `save`."""
        if cfg.init == "olora" and uses_conv1d(model):
            raise ModelError(
                f"method.init=olora: PEFT's OLoRA does not handle the transposed Conv1D layers of this "
                f"{model.config.model_type} model",
                hint="use method.init=pissa, which does",
            )
        with lora_init.quiet_conversion_advice():
            adapted = super().apply(model, cfg, head)
        lora_init.after_apply(adapted, cfg.init)
        return adapted

    def save(self, model: AdaptedModel, directory: Path, cfg: LoraConfig) -> None:
        """PEFT's adapter folder; after PiSSA or OLoRA, converted to a plain LoRA of twice the rank that
        loads on the original base model (`lora_init.save_converted`)."""
        if not lora_init.save_converted(model, directory):
            super().save(model, directory, cfg)

    def lr_scale(self, cfg: LoraConfig) -> Optional[Callable[[str], float]]:
        """LoRA+'s faster B matrices when `method.loraplus_lr_ratio` is set, else one rate for all."""
        return loraplus_scale(cfg.loraplus_lr_ratio)


METHODS.register("lora", LoraConfig)(Lora())


def loraplus_scale(ratio: Optional[float]) -> Optional[Callable[[str], float]]:
    """LoRA+ (Hayou et al. 2024): the B matrices learn `ratio` times faster than the A matrices.

    PEFT's `create_loraplus_optimizer` builds its own optimiser; ftcli needs only the per-parameter
    factor, so that the fused AdamW and its weight-decay groups stay as they are.
    """
    if ratio is None:
        return None
    return lambda name: ratio if {"lora_B", "lora_embedding_B"} & set(name.split(".")) else 1.0


def upper_layers(model: PreTrainedModel, frozen_bottom: int) -> Optional[list[int]]:
    """Indices of the transformer layers above the bottom `frozen_bottom`, or None for all of them."""
    if not frozen_bottom:
        return None
    from ftcli.methods.freeze import transformer_layers

    count = len(transformer_layers(model))
    if frozen_bottom >= count:
        raise ModelError(
            f"method.freeze_bottom_layers={frozen_bottom} leaves no layer for LoRA: the model has {count}",
            hint=f"use a value from 0 to {count - 1}",
        )
    return list(range(frozen_bottom, count))


def default_targets(model: PreTrainedModel) -> list[str]:
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    model_type = model.config.model_type
    if model_type == "encoder-decoder":  # warm-started from an encoder: that encoder's targets, in both halves
        model_type = model.config.encoder.model_type
    targets = EXTRA_TARGETS.get(model_type) or PEFT_TARGETS.get(model_type)
    if not targets:
        raise ModelError(
            f"ftcli has no default LoRA targets for model type {model_type!r}; "
            f"its linear layers are: {', '.join(linear_names(model))}",
            hint="set method.target_modules=[name,...] from that list, or [all-linear]",
        )
    return list(targets)

