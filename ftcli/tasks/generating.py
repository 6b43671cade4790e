"""Tasks scored on what the model writes: summarisation, translation, instruction following.

A generating task declares, beside what every task declares, what generation needs:

- `prompts` and `prompt_collator`: what each feature's text is written from, and how prompts
  are batched (a decoder-only model continues left-padded prompts; an encoder-decoder reads
  the features' own encoder inputs);
- `stop_ids`: the tokens that end an answer as the task writes it;
- `generation`: the settings it generates with (`task.generation`);
- `generate_in_eval`: whether evaluation generates, or reports the teacher-forced loss only.

From those, `GeneratingTask` gives the rest of `ftcli.tasks.base.Task`: the outputs (texts, and
the loss per target token when the features have targets), the scores (the loss, its
perplexity, and the task's own text metrics) and the predictions (`{"generated": text}`).
Collecting logits over a whole vocabulary would cost gigabytes, so no logits are kept.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ftcli.config.schema import GenerationConfig
from ftcli.tasks.bound import BoundTask

if TYPE_CHECKING:
    from torch import nn
    from transformers.generation.streamers import BaseStreamer

    from ftcli.config.schema import TaskConfig
    from ftcli.engine.step import Collate
    from ftcli.tasks.base import Autocast, Feature

C = TypeVar("C", bound="TaskConfig")
GENERATED = "generated"  # the field `predict` writes each text to
MAX_EXP = 700.0  # math.exp overflows a float past ~709


@dataclass
class Generated:
    """A generating task's outputs, in feature order."""

    texts: list[str] | None  # the decoded new text per feature; None when evaluation did not generate
    loss: float | None  # mean teacher-forced loss per target token, when the features have targets
    loss_tokens: int = 0  # the target tokens `loss` is the mean over

    @classmethod
    def joined(cls, parts: list[Generated]) -> Generated:
        """The outputs of consecutive shares of the features, as one: texts in order, and the
        loss per target token over all of them."""
        texts = None if any(p.texts is None for p in parts) else [t for p in parts for t in p.texts or []]
        tokens = sum(p.loss_tokens for p in parts if p.loss is not None)
        total = sum(p.loss * p.loss_tokens for p in parts if p.loss is not None)
        loss = total / tokens if tokens else None
        return cls(texts, loss, tokens)


class GeneratingTask(BoundTask[C], ABC):
    """A bound task scored on the texts its model writes."""

    @property
    @abstractmethod
    def generation(self) -> GenerationConfig:
        """The settings the task generates with."""

    @property
    def generate_in_eval(self) -> bool:
        """Whether evaluation generates for labelled features; without it, evaluation reports only the
        loss and perplexity, and only `predict` generates."""
        return True

    @abstractmethod
    def collator(self) -> Collate:
        """Pads features with their targets: the batches the teacher-forced loss is computed on."""

    @abstractmethod
    def prompts(self, features: list[Feature]) -> list[Feature]:
        """What generation starts from, one prompt per feature."""

    @abstractmethod
    def prompt_collator(self) -> Collate:
        """Pads prompts into a batch for `generate`."""

    def stop_ids(self) -> list[int]:
        """The tokens that end an answer for a decoder-only model: the tokenizer's EOS, else its SEP."""
        tokenizer = self.tokenizer
        end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        return [end] if end is not None else []

    @abstractmethod
    def metrics(self, texts: list[str], features: list[Feature]) -> dict[str, Any]:
        """The task's own scores of the generated `texts` against the references in `features`."""

    def outputs(
        self, model: nn.Module, features: list[Feature], batch_size: int, autocast: Autocast,
        streamer: BaseStreamer | None = None,
    ) -> Generated:
        """The texts written for every feature (unless the features are labelled and evaluation does
        not generate), and the teacher-forced loss per target token when they are labelled."""
        from ftcli.engine.generation import generate_ids, is_encoder_decoder, stop_settings, teacher_forced_totals

        labelled = bool(features) and "labels" in features[0]
        loss_sum, tokens = teacher_forced_totals(model, features, self.collator(), batch_size, autocast) if labelled else (0.0, 0)
        loss = loss_sum / tokens if tokens else None
        if labelled and not self.generate_in_eval:
            return Generated(None, loss, tokens)
        stops = {} if is_encoder_decoder(model) else stop_settings(model, self.stop_ids(), self.tokenizer.pad_token_id)
        settings = {**self.generation.as_kwargs(), **stops}
        sequences = generate_ids(
            model, self.prompts(features), self.prompt_collator(), batch_size, settings, autocast, streamer
        )
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return Generated([self.finish(text) for text in texts], loss, tokens)

    def finish(self, text: str) -> str:
        """A decoded answer as the task reports it: without surrounding whitespace."""
        return text.strip()

    def scores(self, outputs: Generated, features: list[Feature]) -> dict[str, Any]:
        """The loss, its perplexity (the loss is per target token), and the text metrics when texts were written."""
        result: dict[str, Any] = {"loss": outputs.loss}
        if outputs.loss is not None:
            result["perplexity"] = math.exp(min(outputs.loss, MAX_EXP))
        if outputs.texts is not None:
            result.update(self.metrics(outputs.texts, features))
        return result

    def predictions(self, outputs: Generated, features: list[Feature]) -> list[dict[str, Any]]:
        return [{GENERATED: text} for text in outputs.texts or []]

    def prediction_fields(self) -> tuple[str, ...]:
        return (GENERATED,)
