"""Mixed precision: which accelerate mode a `trainer.precision` setting means on this hardware,
and the autocast context that gives inference the numerics training had."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

from ftcli.config.schema import Precision


def mixed_precision(precision: Precision) -> str:
    """accelerate's mixed-precision mode for a `trainer.precision` setting.

    bf16 is only used where the hardware computes it: emulated on a CPU without AVX512-BF16 or
    AMX, a training step runs about 9x slower than in fp32 (MiniLM, batch 32 x 64 tokens, AVX2).
    """
    if precision is Precision.auto:
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if precision is Precision.bf16 and not native_bf16():
        _bf16_fallback_notice()
        return "no"
    return {Precision.fp32: "no", Precision.bf16: "bf16", Precision.fp16: "fp16"}[precision]


def native_bf16() -> bool:
    """Whether bf16 math runs in hardware here: a CUDA GPU that has it, or a CPU oneDNN runs it on."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@functools.cache
def _bf16_fallback_notice() -> None:
    from ftcli import ui

    ui.info(
        "[yellow]trainer.precision=bf16: this CPU has no bf16 instructions (AVX512-BF16 or AMX), where bf16 "
        "runs several times slower than fp32; training and evaluating in fp32[/]"
    )


def autocast_for(precision: Precision, device: torch.device) -> Callable[[], AbstractContextManager[Any]]:
    """The autocast context inference should use to match training numerics."""
    mode = mixed_precision(precision)
    if mode == "no":
        return lambda: torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)
