"""`full`: every parameter is trained; the whole model is saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ftcli.config.schema import MethodConfig
from ftcli.methods.base import METHODS, WholeModelMethod

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel


@dataclass
class FullConfig(MethodConfig):
    name: str = "full"


class Full(WholeModelMethod[FullConfig]):
    default_lr = 5.0e-5

    def apply(self, model: PreTrainedModel, cfg: FullConfig, head: list[str]) -> AdaptedModel:
        model.requires_grad_(True)
        return model


METHODS.register("full", FullConfig)(Full())
