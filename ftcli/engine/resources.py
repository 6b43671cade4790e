"""What a run cost: peak memory of this process (and of the GPU) and the size of saved weights."""

from __future__ import annotations

import gc
import resource
import sys
from pathlib import Path

WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt"}


def reset_peak_memory() -> None:
    """Start the GPU peak counter afresh (a sweep trains several runs in one process)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


def release_memory() -> None:
    """Free what a model no longer referenced still holds: its tensors now, and on CUDA the cached
    blocks they leave, so the next model a command loads (`ilf` loads one per stage) finds the GPU
    as empty as it was before the first."""
    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process and, on CUDA, peak GPU memory allocated by torch.

    The RSS peak is the process's lifetime peak, so in a sweep it covers the runs before this one.
    """
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peaks = {"peak_rss_mb": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peaks["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peaks


def weights_mb(folder: Path) -> float:
    """Size of the weight files in a saved folder (tokenizer and config files excluded), in MB."""
    return round(sum(p.stat().st_size for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES) / 1e6, 3)
