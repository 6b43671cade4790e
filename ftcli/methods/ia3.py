"""`ia3`: learned rescaling vectors (IA3, through PEFT) on attention keys/values and feed-forward inputs.

The vectors start at 1, so the model is unchanged at initialisation; the head trains and is
saved with the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ftcli.config.schema import MethodConfig
from ftcli.errors import ModelError
from ftcli.methods.base import METHODS
from ftcli.methods.peft_adapter import PeftMethod, linear_names, task_type, uses_conv1d

if TYPE_CHECKING:
    from peft import PeftConfig
    from transformers import PreTrainedModel

EXTRA_TARGETS = {"distilbert": (["k_lin", "v_lin", "lin2"], ["lin2"])}


@dataclass
class IA3Config(MethodConfig):
    name: str = "ia3"
    target_modules: Optional[list[str]] = None  # null: the architecture's default (BERT: key, value, output.dense)
    feedforward_modules: Optional[list[str]] = None  # targets whose input (not output) is scaled

    def validate(self) -> list[str]:
        if self.feedforward_modules is not None and self.target_modules is None:
            return ["method.feedforward_modules needs method.target_modules (it must be a subset of them)"]
        return []


class IA3(PeftMethod[IA3Config]):
    default_lr = 3.0e-3

    def peft_config(self, model: PreTrainedModel, cfg: IA3Config, head: list[str]) -> PeftConfig:
        import peft

        if cfg.target_modules is None:
            targets, feedforward = default_targets(model)
        else:
            targets, feedforward = list(cfg.target_modules), list(cfg.feedforward_modules or [])
        return peft.IA3Config(
            target_modules=targets,
            feedforward_modules=feedforward,
            fan_in_fan_out=uses_conv1d(model),
            modules_to_save=head,
            task_type=task_type(model),
        )


def default_targets(model: PreTrainedModel) -> tuple[list[str], list[str]]:
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS

    model_type = model.config.model_type
    if model_type in EXTRA_TARGETS:
        targets, feedforward = EXTRA_TARGETS[model_type]
        return list(targets), list(feedforward)
    if model_type not in TARGETS:
        raise ModelError(
            f"ftcli has no default IA3 targets for model type {model_type!r}; "
            f"its linear layers are: {', '.join(linear_names(model))}",
            hint="set method.target_modules=[...] and method.feedforward_modules=[...] from that list",
        )
    return list(TARGETS[model_type]), list(FEEDFORWARD.get(model_type, []))


METHODS.register("ia3", IA3Config)(IA3())
