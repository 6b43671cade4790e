"""`full`: every parameter is trained; the whole model is saved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ftcli.config.schema import MethodConfig
from ftcli.methods.base import METHODS, save_pretrained_folder

if TYPE_CHECKING:
    from torch import nn


@dataclass
class FullConfig(MethodConfig):
    name: str = "full"


class Full:
    artifact = "model"
    default_lr = 5.0e-5

    def apply(self, model: nn.Module, cfg: FullConfig, head: list[str]) -> nn.Module:
        model.requires_grad_(True)
        return model

    def save(self, model: nn.Module, directory: Path) -> None:
        save_pretrained_folder(model, directory)


METHODS.register("full", FullConfig)(Full())
