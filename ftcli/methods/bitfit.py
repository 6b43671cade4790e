"""`bitfit`: only the bias terms train, plus the head (Ben Zaken et al., 2022); the model is saved whole.

PEFT has no BitFit, and it needs no wrapper: it is a choice of which parameters require grad.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ftcli.config.schema import MethodConfig
from ftcli.errors import ModelError
from ftcli.methods.base import METHODS, save_pretrained_folder

if TYPE_CHECKING:
    from torch import nn


@dataclass
class BitFitConfig(MethodConfig):
    name: str = "bitfit"


class BitFit:
    artifact = "model"
    default_lr = 1.0e-3

    def apply(self, model: nn.Module, cfg: BitFitConfig, head: list[str]) -> nn.Module:
        model.requires_grad_(False)
        biases = [p for name, p in model.named_parameters() if name.endswith(".bias")]
        if not biases:
            raise ModelError(
                f"this {model.config.model_type} model has no bias terms, so BitFit has nothing to train",
                hint="use method=lora or method=ln_tuning",
            )
        for param in biases:
            param.requires_grad_(True)
        for name in head:
            model.get_submodule(name).requires_grad_(True)
        return model

    def save(self, model: nn.Module, directory: Path) -> None:
        save_pretrained_folder(model, directory)


METHODS.register("bitfit", BitFitConfig)(BitFit())
