"""`bitfit`: only the bias terms train, plus the head (Ben Zaken et al., 2022); the model is saved whole.

PEFT has no BitFit, and it needs no wrapper: it is a choice of which parameters require grad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ftcli.config.schema import MethodConfig
from ftcli.errors import ModelError
from ftcli.methods.base import METHODS, WholeModelMethod, freeze_all_but_head

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel


@dataclass
class BitFitConfig(MethodConfig):
    name: str = "bitfit"


class BitFit(WholeModelMethod[BitFitConfig]):
    default_lr = 1.0e-3

    def apply(self, model: PreTrainedModel, cfg: BitFitConfig, head: list[str]) -> AdaptedModel:
        biases = [p for name, p in model.named_parameters() if name.endswith(".bias")]
        if not biases:
            raise ModelError(
                f"this {model.config.model_type} model has no bias terms, so BitFit has nothing to train",
                hint="use method=lora or method=ln_tuning",
            )
        freeze_all_but_head(model, head)
        for param in biases:
            param.requires_grad_(True)
        return model


METHODS.register("bitfit", BitFitConfig)(BitFit())
