"""`freeze`: the backbone is frozen; the head (and optionally the top k layers) is trained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ftcli.config.schema import MethodConfig
from ftcli.errors import ModelError
from ftcli.methods.base import METHODS, WholeModelMethod, freeze_all_but_head

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel


@dataclass
class FreezeConfig(MethodConfig):
    name: str = "freeze"
    train_top_layers: int = 0  # transformer layers, counted from the top, trained with the head

    def validate(self) -> list[str]:
        if self.train_top_layers < 0:
            return [f"method.train_top_layers={self.train_top_layers} must be 0 or more"]
        return []


class Freeze(WholeModelMethod[FreezeConfig]):
    default_lr = 1.0e-3

    def apply(self, model: PreTrainedModel, cfg: FreezeConfig, head: list[str]) -> AdaptedModel:
        freeze_all_but_head(model, head)
        if cfg.train_top_layers:
            layers = transformer_layers(model)
            if cfg.train_top_layers > len(layers):
                raise ModelError(
                    f"method.train_top_layers={cfg.train_top_layers} but the model has {len(layers)} layers",
                    hint=f"use a value from 0 to {len(layers)}",
                )
            for layer in layers[len(layers) - cfg.train_top_layers:]:
                layer.requires_grad_(True)
        return model


METHODS.register("freeze", FreezeConfig)(Freeze())


def transformer_layers(model: PreTrainedModel) -> list[nn.Module]:
    """The backbone's stack of transformer blocks: the ModuleList as long as the config's layer count."""
    from torch import nn

    count = getattr(model.config, "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return list(module)
    raise ModelError(
        f"could not find the {count} transformer layers of this {model.config.model_type} model",
        hint="use method.train_top_layers=0 (head only) or method=lora",
    )
