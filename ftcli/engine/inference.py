"""Batched, length-sorted inference under `torch.inference_mode`, results in input order.

Sequence-level heads give one logits row per input. Token-level heads give one row per token;
each input's rows are cut to its own tokens (the attention mask's ones, so either padding side
works) and returned as a list, since inputs differ in length. Question-answering heads give
start and end logits per token: they are stacked as one (tokens, 2) array per input.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ftcli.engine.batching import sorted_batches


@dataclass
class Outputs:
    logits: np.ndarray | list[np.ndarray]  # in input order: (inputs, labels), or one (tokens, labels) per input
    loss: float | None  # mean loss over the inputs, when they had labels


def run_inference(
    model: nn.Module,
    features: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Outputs:
    """Logits (float32) for every feature; the mean loss when the features carry labels."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks: dict[int, np.ndarray] = {}
    loss_sum, loss_count = 0.0, 0
    lengths = [len(f["input_ids"]) for f in features]
    with torch.inference_mode():
        for batch_idx in sorted_batches(lengths, batch_size):
            batch = {k: v.to(device) for k, v in collate([features[i] for i in batch_idx]).items()}
            with autocast():
                out = model(**batch)
            logits = _logits(out).float().cpu().numpy()
            mask = batch["attention_mask"].bool().cpu().numpy() if "attention_mask" in batch else None
            for row, i in enumerate(batch_idx):
                if logits.ndim == 2:
                    chunks[i] = logits[row]
                else:  # per token: this input's own tokens (right padding assumed without a mask)
                    chunks[i] = logits[row][mask[row]] if mask is not None else logits[row][: lengths[i]]
            if getattr(out, "loss", None) is not None:
                loss_sum += out.loss.float().item() * len(batch_idx)
                loss_count += len(batch_idx)
    model.train(was_training)
    ordered = [chunks[i] for i in range(len(features))]
    if not ordered:
        return Outputs(np.zeros((0,)), None)
    per_token = ordered[0].ndim == 2
    return Outputs(ordered if per_token else np.stack(ordered), loss_sum / loss_count if loss_count else None)


def _logits(out: Any) -> torch.Tensor:
    """The output's logits; a QA head's start and end logits as (batch, tokens, 2), read like per-token logits."""
    if getattr(out, "logits", None) is None and getattr(out, "start_logits", None) is not None:
        return torch.stack([out.start_logits, out.end_logits], dim=-1)
    return out.logits
