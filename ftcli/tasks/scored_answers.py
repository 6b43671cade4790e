"""Answers as token sequences, and their log-probabilities under a policy and its reference.

What `task=preference` and `task=kto` share. A sequence is a prompt written as `task=instruction`
writes it (chat template or plain template, `ftcli.tasks.chat.Renderer`) followed by one answer;
only the answer's tokens are labelled, so a log-probability is the sum over the answer alone.
Earlier assistant turns of a multi-turn prompt are prompt here, not answers.

Reference log-probabilities are computed by the frozen reference model
(`ftcli.engine.frozen.FrozenModels`) beside every forward pass of the policy, or once before
training (`task.precompute_reference`), kept in a file with a fingerprint of the sequences they
belong to, so a resumed run reads them back and stale values are never used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ftcli.engine.step import IGNORE_INDEX
from ftcli.errors import DataError
from ftcli.files import write_text_atomic
from ftcli.tasks.chat import Renderer, Segment, Template
from ftcli.tasks.instruction import fit

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ftcli.engine.frozen import FrozenModels
    from ftcli.tasks.base import Autocast, Feature
    from ftcli.tasks.preference_rows import Turns

Tokens = tuple[list[int], list[int]]  # input ids, and labels with IGNORE_INDEX off the answer
Sides = Callable[["Feature"], list[Tokens]]  # the sequences one feature stands for, scored in order


class PromptTooLong(DataError):
    """A prompt that alone fills task.max_length, so no answer fits after it."""


@dataclass(frozen=True)
class Answered:
    ids: list[int]
    labels: list[int]
    cut: bool  # the answer lost its end to task.max_length


class AnswerEncoder:
    """Writes (prompt turns, answer) as one sequence of at most `max_length` tokens."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, template: Template, max_length: int) -> None:
        self.renderer = Renderer(tokenizer, template)
        self.max_length = max_length

    def prompt(self, turns: Turns) -> list[int]:
        """What generation continues: the prompt and the opening of an assistant turn, its last
        `max_length` tokens."""
        return self.renderer.prompt(turns)[-self.max_length:]

    def answered(self, turns: Turns, answer: str, where: str) -> Answered:
        """The prompt and `answer`, labelled on the answer; its end is cut to fit `max_length`.

        A prompt that leaves no room for the answer is refused: cutting the prompt instead would
        score the answer against a question the row never asked.
        """
        segments = self.renderer.segments([*turns, {"role": "assistant", "content": answer}], where)
        last = len(segments) - 1
        segments = [Segment(s.ids, s.trained and i == last) for i, s in enumerate(segments)]
        prompt = sum(len(s.ids) for s in segments[:-1])
        if prompt >= self.max_length:
            raise PromptTooLong(
                f"{where}: the prompt alone is {prompt} tokens, which leaves no room for the answer "
                f"within task.max_length={self.max_length}",
                hint="raise task.max_length, shorten or drop the row, or skip every such row with "
                "task.skip_long_prompts=true",
            )
        ids, mask = fit(segments, self.max_length)
        labels = [i if m else IGNORE_INDEX for i, m in zip(ids, mask)]
        return Answered(ids, labels, prompt + len(segments[-1].ids) > self.max_length)

    def stop_ids(self) -> list[int]:
        return self.renderer.stop_ids()


def pad(sequences: Sequence[Tokens], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask and labels of `sequences`, one row each."""
    import torch

    width = max(len(ids) for ids, _ in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (tokens, labelled) in enumerate(sequences):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, : len(labelled)] = torch.tensor(labelled)
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def logps(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's summed answer log-probability under `model`, and its answer token count."""
    from ftcli.tasks.preference_losses import answer_logps

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return answer_logps(logits, batch["labels"])


def reference_logps(frozen: FrozenModels, policy: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each row's summed answer log-probability under the reference model of `policy`."""
    with frozen.reference(policy) as reference:
        return logps(reference, batch)[0].detach()


def batches(
    features: list[Feature], sides: Sides, pad_id: int, batch_size: int, device: torch.device,
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Features in batches of similar length: their indices, and one padded batch on `device` of
    every sequence of theirs (all features' first sides, then their second sides, ...)."""
    from ftcli.engine.batching import sorted_batches

    lengths = [max(len(ids) for ids, _ in sides(f)) for f in features]
    for indices in sorted_batches(lengths, batch_size):
        per_feature = [sides(features[i]) for i in indices]
        sequences = [seq[k] for k in range(len(per_feature[0])) for seq in per_feature]
        yield indices, {k: v.to(device) for k, v in pad(sequences, pad_id).items()}


def scored(
    model: nn.Module, features: list[Feature], sides: Sides, pad_id: int, batch_size: int, autocast: Autocast,
    reference: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """For `batches` of features: their indices, and for every sequence of theirs the summed answer
    log-probability, the answer token count, and the reference's log-probability (when
    `reference` is given), without gradients."""
    import torch

    with torch.no_grad():
        for indices, batch in batches(features, sides, pad_id, batch_size, next(model.parameters()).device):
            with autocast():
                values, counts = logps(model, batch)
                ref = reference(batch) if reference is not None else None
            yield indices, values.float().cpu(), counts.cpu(), None if ref is None else ref.float().cpu()


def reference_only(
    frozen: FrozenModels, policy: nn.Module, features: list[Feature], sides: Sides, pad_id: int, batch_size: int,
    autocast: Autocast,
) -> list[list[float]]:
    """Per feature, the reference's summed answer log-probability of each of its sequences."""
    values: dict[int, list[float]] = {}
    for indices, batch in batches(features, sides, pad_id, batch_size, next(policy.parameters()).device):
        with autocast():
            refs = reference_logps(frozen, policy, batch).float().cpu().tolist()
        for row, i in enumerate(indices):
            values[i] = refs[row :: len(indices)]
    return [values[i] for i in range(len(features))]


def precomputed(
    store: Path, split: str, features: list[Feature], sides: Sides, compute: Callable[[], list[list[float]]]
) -> list[list[float]]:
    """The reference log-probabilities of a split's sequences: read from `store` when it holds them
    for exactly these sequences, else `compute()`d and written there."""
    fingerprint = _fingerprint(features, sides)
    path = store / f"reference_logps.{split}.json"
    if path.is_file():
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
            if kept.get("fingerprint") == fingerprint:
                return [list(map(float, values)) for values in kept["logps"]]
        except (ValueError, KeyError, TypeError):
            pass  # a damaged file is computed again
    values = compute()
    store.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"fingerprint": fingerprint, "logps": values}))
    return values


def _fingerprint(features: list[Feature], sides: Sides) -> str:
    digest = hashlib.sha256()
    for feature in features:
        for ids, labels in sides(feature):
            digest.update(json.dumps([ids, labels]).encode())
    return digest.hexdigest()


def implicit_reward(logp: float, ref_logp: float | None, tokens: int, beta: float) -> float:
    """The reward a policy implies for an answer: β·(log π − log π_ref), or, without a reference
    (SimPO, ORPO), β times the answer's mean log-probability per token."""
    return beta * (logp - ref_logp) if ref_logp is not None else beta * logp / max(tokens, 1)
