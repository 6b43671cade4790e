"""The optimiser and learning-rate schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import nn

from ftcli.config.schema import OptimizerName, TrainerConfig

log = logging.getLogger(__name__)


def build_optimizer(
    model: nn.Module, cfg: TrainerConfig, lr: float, lr_scale: Optional[Callable[[str], float]] = None
) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases and norm weights (1-D tensors).

    `lr_scale(name)` multiplies the learning rate of single parameters (LoRA+ trains B faster);
    schedules scale every group alike, so the ratio holds throughout. The fused kernel is used
    when the torch build has it for the parameters' device (it cuts the optimiser step several
    times over on CPU); otherwise the foreach implementation.
    """
    by_kind: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            kind = (param.ndim < 2, lr_scale(name) if lr_scale else 1.0)  # (no decay, lr factor)
            by_kind.setdefault(kind, []).append(param)
    groups = [
        {"params": params, "weight_decay": 0.0 if no_decay else cfg.weight_decay, "lr": lr * factor}
        for (no_decay, factor), params in sorted(by_kind.items(), key=lambda item: item[0])
    ]
    if cfg.optimizer is not OptimizerName.adamw:
        return eight_bit_adamw(groups, lr, cfg.optimizer)
    if cfg.fused_optimizer:
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError) as exc:
            log.debug("fused AdamW unavailable (%s); using foreach", exc)
    return torch.optim.AdamW(groups, lr=lr, foreach=True)


def eight_bit_adamw(groups: list[dict[str, Any]], lr: float, name: OptimizerName) -> torch.optim.Optimizer:
    """bitsandbytes' AdamW with 8-bit states (`adamw_8bit`), paged to CPU memory when the GPU runs
    short (`paged_adamw_8bit`); the same parameter groups and weight decay as torch's."""
    from ftcli.models.quantization import require

    require(f"trainer.optimizer={name.value}")
    import bitsandbytes as bnb

    cls = bnb.optim.PagedAdamW8bit if name is OptimizerName.paged_adamw_8bit else bnb.optim.AdamW8bit
    optimizer: torch.optim.Optimizer = cls(groups, lr=lr)
    return optimizer


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainerConfig, total_steps: int) -> Any:
    from transformers import get_scheduler

    warmup = round(cfg.warmup_ratio * total_steps)
    name = "constant_with_warmup" if cfg.scheduler.value == "constant" else cfg.scheduler.value
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
