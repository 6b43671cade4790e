"""The bottleneck adapter layers (torch modules; imported only when a model is adapted)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import nn
from transformers.activations import ACT2FN


class Bottleneck(nn.Module):
    """hidden + up(dropout(act(down(hidden)))); `up` starts at zero, so the block starts as the identity.

    With `enabled` false it is the identity again: the base model runs through the adapted one
    (`switched_off`).
    """

    enabled = True

    def __init__(self, size: int, width: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.down = nn.Linear(size, width)
        self.act = ACT2FN[activation]
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(width, size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return hidden
        return hidden + self.up(self.dropout(self.act(self.down(hidden))))


class WithBottleneck(nn.Module):
    """An output projection followed by its bottleneck adapter."""

    def __init__(self, base_layer: nn.Module, adapter: Bottleneck) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapter = adapter

    # Some models read their projection's weight directly (T5 checks `wo.weight.dtype`).
    @property
    def weight(self) -> torch.Tensor:
        return cast(torch.Tensor, self.base_layer.weight)

    @property
    def bias(self) -> torch.Tensor | None:
        return cast("torch.Tensor | None", self.base_layer.bias)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return cast(torch.Tensor, self.adapter(self.base_layer(*args, **kwargs)))


@contextmanager
def switched_off(model: nn.Module) -> Iterator[None]:
    """Every bottleneck of `model` passes its input through unchanged inside the block."""
    adapters = [m for m in model.modules() if isinstance(m, Bottleneck)]
    for adapter in adapters:
        adapter.enabled = False
    try:
        yield
    finally:
        for adapter in adapters:
            adapter.enabled = True


def output_size(layer: nn.Module) -> int:
    """Output features of a linear layer: nn.Linear, GPT-2's Conv1D, or a PEFT layer around either."""
    get_base_layer = getattr(layer, "get_base_layer", None)
    base = get_base_layer() if get_base_layer is not None else layer
    for attribute in ("out_features", "nf"):
        if hasattr(base, attribute):
            return int(getattr(base, attribute))
    raise TypeError(f"cannot tell the output size of {type(base).__name__}")
