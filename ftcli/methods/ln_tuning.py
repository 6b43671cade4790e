"""`ln_tuning`: only the LayerNorm weights and biases train (through PEFT), plus the head.

The cheapest method that still moves every layer's activations; a strong baseline on small data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ftcli.config.schema import MethodConfig
from ftcli.methods.base import METHODS, head_modules
from ftcli.methods.peft_adapter import PeftMethod, norm_names, task_type

if TYPE_CHECKING:
    from peft import PeftConfig
    from transformers import PreTrainedModel


@dataclass
class LNTuningConfig(MethodConfig):
    name: str = "ln_tuning"
    target_modules: Optional[list[str]] = None  # null: every LayerNorm of the backbone


class LNTuning(PeftMethod[LNTuningConfig]):
    default_lr = 1.0e-3
    layer_kind = "LayerNorm"

    def candidate_names(self, model: PreTrainedModel) -> list[str]:
        return norm_names(model, head_modules(model))

    def peft_config(self, model: PreTrainedModel, cfg: LNTuningConfig, head: list[str]) -> PeftConfig:
        import peft

        targets = list(cfg.target_modules) if cfg.target_modules is not None else norm_names(model, head)
        return peft.LNTuningConfig(target_modules=targets, modules_to_save=head, task_type=task_type(model))


METHODS.register("ln_tuning", LNTuningConfig)(LNTuning())
