"""Which fused attention kernels run on a GPU, for batches whose lengths vary.

Dynamic padding gives every batch its own sequence length. PyTorch's cuDNN attention (preferred
on Hopper GPUs) builds an execution plan for each new shape, about half a second apiece: with
the ~45 lengths of SST-2's first 400 length-grouped batches, MiniLM's first pass ran at 80 ms a
step on an H100 against 23.5 ms with cuDNN attention left out, and 26.1 against 19.8 ms once
every shape had been seen (`scripts/bench.py` measures the whole run). The memory-efficient
kernel takes padding masks and needs no per-shape plan, so training and inference run with
cuDNN attention excluded; flash attention (for unmasked batches) and the math kernel stay.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any


def variable_length_attention() -> AbstractContextManager[Any]:
    """Scaled-dot-product attention without the cuDNN backend; nothing changes off CUDA."""
    import torch

    if not torch.cuda.is_available():
        return nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3 has no backend selection, and no cuDNN attention either
        return nullcontext()
    if not hasattr(SDPBackend, "CUDNN_ATTENTION"):
        return nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
