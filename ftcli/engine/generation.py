"""Generation and teacher-forced loss for tasks scored on what the model writes.

Generation tasks (summarisation, translation, instruction following) are scored on generated
text, not on per-token logits: collecting those over a vocabulary would cost gigabytes, so this
path keeps only the generated token ids, plus the teacher-forced loss when the features carry
labels. Batches are length-sorted; results come back in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from ftcli.engine.batching import sorted_batches
from ftcli.engine.eval_mode import evaluating
from ftcli.engine.step import IGNORE_INDEX, Collate

if TYPE_CHECKING:
    from transformers import GenerationMixin

log = logging.getLogger(__name__)


def teacher_forced_loss(
    model: nn.Module,
    features: list[dict[str, Any]],
    collate: Collate,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> float | None:
    """Mean loss per target token over all features (None when there are no targets).

    Each batch's mean is weighted by its number of target tokens, so the result does not
    depend on how the features were batched and `exp(loss)` is the perplexity.
    """
    loss_sum, tokens = teacher_forced_totals(model, features, collate, batch_size, autocast)
    return loss_sum / tokens if tokens else None


def teacher_forced_totals(
    model: nn.Module,
    features: list[dict[str, Any]],
    collate: Collate,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> tuple[float, int]:
    """The summed loss over all target tokens of `features`, and their number: what the mean of
    several processes' shares is made from."""
    decoder_only = not is_encoder_decoder(model)
    device = next(model.parameters()).device
    loss_sum, tokens = 0.0, 0
    with evaluating(model), torch.inference_mode():
        for batch_idx in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
            batch = {k: v.to(device) for k, v in collate([features[i] for i in batch_idx]).items() if v is not None}
            targets = batch["labels"][:, 1:] if decoder_only else batch["labels"]  # causal LMs shift by one
            count = int((targets != IGNORE_INDEX).sum())
            if count:
                with autocast():
                    loss_sum += model(**batch).loss.float().item() * count
                tokens += count
    return loss_sum, tokens


def generate_ids(
    model: nn.Module,
    prompts: list[dict[str, Any]],
    collate: Collate,
    batch_size: int,
    generation: dict[str, Any],
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    streamer: Any = None,
) -> list[list[int]]:
    """`model.generate` for every prompt: the new token ids only, in input order.

    A decoder-only model's output repeats its (left-padded) prompt, which is cut off here. With
    a `streamer` (a `transformers` TextStreamer) prompts go one at a time in input order, so the
    text appears as it is written. Prompts too long for the model's position table lose their start
    (`within_positions`).
    """
    prompts, generation = within_positions(model, prompts, generation)
    decoder_only = not is_encoder_decoder(model)
    device = next(model.parameters()).device
    order = [[i] for i in range(len(prompts))] if streamer else sorted_batches(
        [len(p["input_ids"]) for p in prompts], batch_size
    )
    sequences: dict[int, list[int]] = {}
    with evaluating(model), torch.inference_mode():
        for batch_idx in order:
            batch = {k: v.to(device) for k, v in collate([prompts[i] for i in batch_idx]).items() if v is not None}
            with autocast():
                # every model ftcli generates with is a transformers or PEFT model, which has generate()
                output = cast("GenerationMixin", model).generate(**batch, **generation, streamer=streamer)
            if decoder_only:
                output = output[:, batch["input_ids"].shape[1]:]
            for row, i in enumerate(batch_idx):
                sequences[i] = output[row].tolist()
    return [sequences[i] for i in range(len(prompts))]


def within_positions(
    model: nn.Module, prompts: list[dict[str, Any]], generation: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Prompts and settings that keep a decoder-only model inside its position table (BERT-likes,
    GPT-2): each prompt keeps its last tokens, leaving room for `max_new_tokens`, which is itself at
    most half the table. Without the cut, a prompt cut only to `task.max_length` plus the new tokens
    runs past the table, and the model fails with an index error mid-evaluation.
    """
    from ftcli.models.loading import position_limit

    limit = position_limit(model)
    if limit is None or is_encoder_decoder(model):
        return prompts, generation
    new = min(int(generation.get("max_new_tokens") or 0), limit // 2)
    keep = limit - new
    cut = sum(len(p["input_ids"]) > keep for p in prompts)
    if not cut:
        return prompts, {**generation, "max_new_tokens": new}
    log.warning("%d of %d prompts lost their start to leave room for %d new tokens within the model's %d "
                "positions", cut, len(prompts), new, limit)
    fitted = [{k: v[-keep:] if k in ("input_ids", "attention_mask") else v for k, v in p.items()} for p in prompts]
    return fitted, {**generation, "max_new_tokens": new}


def is_encoder_decoder(model: nn.Module) -> bool:
    """Whether `model` writes from an encoder's reading (T5, BART) rather than continuing its input."""
    return bool(getattr(model.config, "is_encoder_decoder", False))


def stop_settings(model: nn.Module, ends: list[int], pad_token_id: int | None) -> dict[str, Any]:
    """`generate` settings for where a decoder-only model stops and what it pads with: its own stop
    tokens plus `ends` (the end of an answer as the task writes it). Encoder-decoders need none:
    their decoder starts empty and their generation config says when it is done."""
    own = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stops = sorted({*(own if isinstance(own, list) else [own] if own is not None else []), *ends})
    return {"eos_token_id": stops or None, "pad_token_id": pad_token_id}
