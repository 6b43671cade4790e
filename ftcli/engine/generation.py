"""Generation and teacher-forced loss for tasks scored on what the model writes.

Generation tasks (summarisation, translation, instruction following) are scored on generated
text, not on per-token logits: collecting those over a vocabulary would cost gigabytes, so this
path keeps only the generated token ids, plus the teacher-forced loss when the features carry
labels. Batches are length-sorted; results come back in input order.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from ftcli.engine.batching import sorted_batches

IGNORE = -100


def teacher_forced_loss(
    model: nn.Module,
    features: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> float | None:
    """Mean loss per target token over all features (None when there are no targets).

    Each batch's mean is weighted by its number of target tokens, so the result does not
    depend on how the features were batched and `exp(loss)` is the perplexity.
    """
    decoder_only = not getattr(model.config, "is_encoder_decoder", False)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum, tokens = 0.0, 0
    with torch.inference_mode():
        for batch_idx in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
            batch = {k: v.to(device) for k, v in collate([features[i] for i in batch_idx]).items() if v is not None}
            targets = batch["labels"][:, 1:] if decoder_only else batch["labels"]  # causal LMs shift by one
            count = int((targets != IGNORE).sum())
            if count:
                with autocast():
                    loss_sum += model(**batch).loss.float().item() * count
                tokens += count
    model.train(was_training)
    return loss_sum / tokens if tokens else None


def generate_ids(
    model: nn.Module,
    prompts: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    generation: dict[str, Any],
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    streamer: Any = None,
) -> list[list[int]]:
    """`model.generate` for every prompt: the new token ids only, in input order.

    A decoder-only model's output repeats its (left-padded) prompt, which is cut off here. With
    a `streamer` (a `transformers` TextStreamer) prompts go one at a time in input order, so the
    text appears as it is written.
    """
    decoder_only = not getattr(model.config, "is_encoder_decoder", False)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = [[i] for i in range(len(prompts))] if streamer else sorted_batches(
        [len(p["input_ids"]) for p in prompts], batch_size
    )
    sequences: dict[int, list[int]] = {}
    with torch.inference_mode():
        for batch_idx in order:
            batch = {k: v.to(device) for k, v in collate([prompts[i] for i in batch_idx]).items() if v is not None}
            with autocast():
                output = model.generate(**batch, **generation, streamer=streamer)
            if decoder_only:
                output = output[:, batch["input_ids"].shape[1]:]
            for row, i in enumerate(batch_idx):
                sequences[i] = output[row].tolist()
    model.train(was_training)
    return [sequences[i] for i in range(len(prompts))]
