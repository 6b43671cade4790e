"""`lora`: low-rank adapters through PEFT (with DoRA and rsLoRA switches), head trained and saved.

The adapter is saved in PEFT's format, so the folder loads with `PeftModel.from_pretrained`
anywhere; the task head goes in as `modules_to_save`, so a reloaded classifier never comes back
with a random head.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional

from ftcli.config.schema import MethodConfig
from ftcli.errors import ModelError
from ftcli.methods.base import METHODS
from ftcli.methods.peft_adapter import PeftMethod, linear_names, task_type

if TYPE_CHECKING:
    from torch import nn

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
    target_modules: Optional[list[str]] = None  # null: the architecture's default; [all-linear]: every linear layer
    bias: LoraBias = LoraBias.none
    use_dora: bool = False
    use_rslora: bool = False

    def validate(self) -> list[str]:
        problems = []
        if self.rank < 1:
            problems.append(f"method.rank={self.rank} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"method.dropout={self.dropout} must be in [0, 1)")
        if self.target_modules is not None and not self.target_modules:
            problems.append("method.target_modules is an empty list; use null for the architecture's default")
        return problems


class Lora(PeftMethod):
    default_lr = 1.0e-3
    target_hint = "set method.target_modules to some of those names, or [all-linear]"

    def peft_config(self, model: nn.Module, cfg: LoraConfig, head: list[str]) -> Any:
        import peft

        targets = default_targets(model) if cfg.target_modules is None else list(cfg.target_modules)
        return peft.LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules="all-linear" if targets == ["all-linear"] else targets,
            bias=cfg.bias.value,
            use_dora=cfg.use_dora,
            use_rslora=cfg.use_rslora,
            modules_to_save=head,
            task_type=task_type(model),
        )


METHODS.register("lora", LoraConfig)(Lora())


def default_targets(model: nn.Module) -> list[str]:
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    model_type = model.config.model_type
    targets = EXTRA_TARGETS.get(model_type) or PEFT_TARGETS.get(model_type)
    if not targets:
        raise ModelError(
            f"ftcli has no default LoRA targets for model type {model_type!r}; "
            f"its linear layers are: {', '.join(linear_names(model))}",
            hint="set method.target_modules=[name,...] from that list, or [all-linear]",
        )
    return list(targets)

