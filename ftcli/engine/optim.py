"""The optimiser and learning-rate schedule."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from ftcli.config.schema import TrainerConfig

log = logging.getLogger(__name__)


def build_optimizer(model: nn.Module, cfg: TrainerConfig, lr: float) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases and norm weights (1-D tensors).

    The fused kernel is used when the torch build has it for the parameters' device (it cuts the
    optimiser step several times over on CPU); otherwise the foreach implementation.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if cfg.fused_optimizer:
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError) as exc:
            log.debug("fused AdamW unavailable (%s); using foreach", exc)
    return torch.optim.AdamW(groups, lr=lr, foreach=True)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainerConfig, total_steps: int) -> Any:
    from transformers import get_scheduler

    warmup = round(cfg.warmup_ratio * total_steps)
    name = "constant_with_warmup" if cfg.scheduler.value == "constant" else cfg.scheduler.value
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
