"""An exponential moving average of the trainable weights (`trainer.ema`, the decay d).

After each optimiser step every trainable parameter's shadow becomes d·shadow + (1−d)·param; the
shadows start as the weights before the first step. Training goes on with the weights themselves,
and the loop swaps the shadows in wherever the run is judged or kept: each evaluation (so the best
weights are shadows too), the weights the run ends with, hence its final metrics and its artefact.
The shadows are kept in float32, so that a small (1−d)·param is not lost to a low-precision weight,
and go into each checkpoint (`ema.safetensors`), so a resumed run averages on where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ftcli import ui

Shadows = dict[str, torch.Tensor]
KEPT_FROM_START = 0.05  # the share of the average the starting weights may still hold at the end


def trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def start(model: nn.Module) -> Shadows:
    """Shadows equal to the trainable weights as they are now, in float32."""
    return {name: param.detach().to(torch.float32, copy=True) for name, param in trainable(model).items()}


def check_span(decay: float, total_steps: int) -> None:
    """Warn when the weights a run starts from would still hold much of the average at its end:
    after T steps they hold decay^T of it."""
    kept = decay ** total_steps
    if kept > KEPT_FROM_START:
        fitting = KEPT_FROM_START ** (1 / total_steps)
        ui.warn(f"trainer.ema={decay}: after the run's {total_steps} steps the weights it starts from still hold "
                f"{kept:.0%} of the average that is evaluated and saved; lower trainer.ema to {fitting:.3f} or less "
                f"(they then hold at most {KEPT_FROM_START:.0%}), or train for longer")


def placed(shadows: Shadows, model: nn.Module) -> Shadows:
    """`shadows` (read back from a checkpoint) on the devices of the parameters they shadow."""
    params = trainable(model)
    return {name: shadow.to(params[name].device, torch.float32) for name, shadow in shadows.items()}


@torch.no_grad()
def update(shadows: Shadows, model: nn.Module, decay: float) -> None:
    """shadow ← decay·shadow + (1 − decay)·param, for every trainable parameter."""
    params = trainable(model)
    values = list(shadows.values())
    torch._foreach_mul_(values, decay)
    torch._foreach_add_(values, [params[name].detach().to(torch.float32) for name in shadows], alpha=1.0 - decay)


@torch.no_grad()
def load(shadows: Shadows, model: nn.Module) -> None:
    """Put the shadows into the model's weights for good (the weights the run ends with)."""
    params = trainable(model)
    for name, shadow in shadows.items():
        params[name].copy_(shadow)


@contextmanager
def swapped_in(shadows: Shadows | None, model: nn.Module) -> Iterator[None]:
    """The model holds the shadows inside the context, and its own weights again after it (none: as is)."""
    if shadows is None:
        yield
        return
    params = trainable(model)
    with torch.no_grad():
        kept = {name: params[name].detach().clone() for name in shadows}
    load(shadows, model)
    try:
        yield
    finally:
        load(kept, model)
