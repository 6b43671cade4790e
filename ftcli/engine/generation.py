"""Batched, length-sorted generation under `torch.inference_mode`, results in input order.

Generation tasks (summarisation, translation) are scored on what the model writes, not on
teacher-forced logits: collecting per-token logits over a vocabulary would cost gigabytes, so
this path keeps only the generated token ids, plus the teacher-forced loss when the features
carry labels.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ftcli.engine.batching import sorted_batches


@dataclass
class Generated:
    sequences: list[list[int]]  # generated token ids per input, in input order, prompt excluded
    loss: float | None  # mean teacher-forced loss over the inputs, when they had labels


def run_generation(
    model: nn.Module,
    features: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    generation: dict[str, Any],
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Generated:
    """`model.generate(**inputs, **generation)` for every feature; the loss too when labels are given."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sequences: dict[int, list[int]] = {}
    loss_sum, loss_count = 0.0, 0
    lengths = [len(f["input_ids"]) for f in features]
    with torch.inference_mode():
        for batch_idx in sorted_batches(lengths, batch_size):
            collated = collate([features[i] for i in batch_idx])
            batch = {k: v.to(device) for k, v in collated.items() if v is not None}
            inputs = {k: v for k, v in batch.items() if k not in ("labels", "decoder_input_ids")}
            with autocast():
                if "labels" in batch:
                    loss_sum += model(**batch).loss.float().item() * len(batch_idx)
                    loss_count += len(batch_idx)
                output = model.generate(**inputs, **generation)
            for row, i in enumerate(batch_idx):
                sequences[i] = output[row].tolist()
    model.train(was_training)
    return Generated([sequences[i] for i in range(len(features))], loss_sum / loss_count if loss_count else None)
