"""Log-likelihoods of candidate continuations (label words) after contexts, for zero/few-shot scoring."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ftcli.engine.attention import variable_length_attention
from ftcli.engine.batching import sorted_batches
from ftcli.engine.eval_mode import evaluating
from ftcli.engine.step import IGNORE_INDEX


def word_log_likelihoods(model: Any, contexts: list[list[int]], words: list[list[int]], batch_size: int) -> np.ndarray:
    """log P(word | context) for every context and word, summed over the word's tokens: (contexts, words).

    Decoder-only models read `context + word` left-padded, so every row's word ends at the last
    position and only the last `len(word) + 1` positions' logits are computed (`logits_to_keep`),
    not a vocabulary-sized row per prompt token. Encoder-decoders read the context and score the
    word as the decoder's target.
    """
    encoder_decoder = getattr(model.config, "is_encoder_decoder", False)
    pairs = [(c, w) for c in range(len(contexts)) for w in range(len(words))]
    lengths = [len(contexts[c]) + len(words[w]) for c, w in pairs]
    device = next(model.parameters()).device
    pad = getattr(model.config, "pad_token_id", None) or 0
    totals = np.zeros((len(contexts), len(words)))
    with evaluating(model), torch.inference_mode(), variable_length_attention():
        for batch_idx in sorted_batches(lengths, batch_size):
            batch = [(contexts[pairs[i][0]], words[pairs[i][1]]) for i in batch_idx]
            scores = _seq2seq(model, batch, pad, device) if encoder_decoder else _causal(model, batch, pad, device)
            for i, value in zip(batch_idx, scores):
                totals[pairs[i]] = value
    return totals


def _causal(model: Any, batch: list[tuple[list[int], list[int]]], pad: int, device: torch.device) -> list[float]:
    width = max(len(c) + len(w) for c, w in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (context, word) in enumerate(batch):
        sequence = context + word
        ids[row, width - len(sequence):] = torch.tensor(sequence)
        mask[row, width - len(sequence):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift the real tokens' positions
    keep = max(len(w) for _, w in batch) + 1
    logits = model(
        input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device), logits_to_keep=keep
    ).logits.float()
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)  # position j predicts token j + 1
    result = []
    for row, (_, word) in enumerate(batch):
        targets = torch.tensor(word, device=device)
        steps = log_probs[row, keep - 1 - len(word):]
        result.append(steps.gather(-1, targets[:, None]).sum().item())
    return result


def _seq2seq(model: Any, batch: list[tuple[list[int], list[int]]], pad: int, device: torch.device) -> list[float]:
    width = max(len(c) for c, _ in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    depth = max(len(w) for _, w in batch)
    labels = torch.full((len(batch), depth), IGNORE_INDEX, dtype=torch.long)
    for row, (context, word) in enumerate(batch):
        ids[row, : len(context)] = torch.tensor(context)
        mask[row, : len(context)] = 1
        labels[row, : len(word)] = torch.tensor(word)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).logits.float()
    log_probs = torch.log_softmax(logits, dim=-1)
    labels = labels.to(device)
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (picked * (labels != IGNORE_INDEX)).sum(-1).tolist()
