"""Batched, length-sorted inference under `torch.inference_mode`, results in input order.

Sequence-level heads give one logits row per input. Token-level heads give one row per token;
each input's rows are cut to its own tokens (the attention mask's ones, so either padding side
works) and returned as a list, since inputs differ in length. Which tensor of the model's output
holds the logits is the caller's to say (`logits_of`); a head with several, such as a
question-answering head's start and end logits, stacks them on a last axis, which is then read
like per-token logits.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ftcli.engine.batching import sorted_batches
from ftcli.engine.eval_mode import evaluating

if TYPE_CHECKING:
    from ftcli.engine.step import Collate


@dataclass
class Outputs:
    """What one forward pass over a list of features gives, in input order."""

    logits: np.ndarray | list[np.ndarray]  # (inputs, labels), or one (tokens, labels) per input
    loss: float | None  # mean loss over the inputs, when they had labels

    @classmethod
    def joined(cls, parts: list[Outputs]) -> Outputs:
        """The outputs of consecutive shares of the inputs, as one: rows in order, and the mean
        loss over all the inputs (each share's mean weighted by its number of inputs)."""
        sizes = [len(p.logits) for p in parts]
        if all(isinstance(p.logits, np.ndarray) for p in parts):
            kept = [p for p, size in zip(parts, sizes) if size]  # an empty share's array has no row shape
            logits: np.ndarray | list[np.ndarray] = np.concatenate([p.logits for p in kept]) if kept else parts[0].logits
        else:
            logits = [row for p in parts for row in p.logits]
        counted = [(p.loss, size) for p, size in zip(parts, sizes) if p.loss is not None and size]
        total = sum(size for _, size in counted)
        loss = sum(value * size for value, size in counted) / total if total else None
        return cls(logits, loss)


def model_logits(out: Any) -> torch.Tensor:
    """The `logits` of a model's output: what every head but a multi-output one returns."""
    return out.logits


def run_inference(
    model: nn.Module,
    features: list[dict[str, Any]],
    collate: Collate,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    logits_of: Callable[[Any], torch.Tensor] = model_logits,
) -> Outputs:
    """Logits (float32, read from each output with `logits_of`) for every feature; the mean loss
    when the features carry labels."""
    device = next(model.parameters()).device
    chunks: dict[int, np.ndarray] = {}
    loss_sum, loss_count = 0.0, 0
    lengths = [len(f["input_ids"]) for f in features]
    with evaluating(model), torch.inference_mode():
        for batch_idx in sorted_batches(lengths, batch_size):
            batch = {k: v.to(device) for k, v in collate([features[i] for i in batch_idx]).items()}
            with autocast():
                out = model(**batch)
            logits = logits_of(out).float().cpu().numpy()
            mask = batch["attention_mask"].bool().cpu().numpy() if "attention_mask" in batch else None
            for row, i in enumerate(batch_idx):
                if logits.ndim == 2:
                    chunks[i] = logits[row]
                else:  # per token: this input's own tokens (right padding assumed without a mask)
                    chunks[i] = logits[row][mask[row]] if mask is not None else logits[row][: lengths[i]]
            if getattr(out, "loss", None) is not None:
                loss_sum += out.loss.float().item() * len(batch_idx)
                loss_count += len(batch_idx)
    ordered = [chunks[i] for i in range(len(features))]
    if not ordered:
        return Outputs(np.zeros((0,)), None)
    per_token = ordered[0].ndim == 2
    return Outputs(ordered if per_token else np.stack(ordered), loss_sum / loss_count if loss_count else None)
