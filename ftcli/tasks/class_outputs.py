"""Tasks whose predictions are distributions over classes: what a distilled student learns from its
teacher and what an ensemble averages, and how the classes and tokens of two runs line up.

A task qualifies when it is scored on logits and its loss is the model's own cross-entropy
(`ModelLoss` with `Objective.classes`; `Objective.spans`, QA's start and end heads, where the caller
allows them). Its logits are then one row per prediction: per text (classification, pairs) or per
token (ner; qa's positions). Token rows of two runs line up only when both split the text into the
same tokens, so such runs must share a vocabulary; classes line up by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftcli.engine.step import LossUnit, ModelLoss, Objective

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedTokenizerBase

    from ftcli.config.schema import TaskConfig
    from ftcli.tasks.base import Task


class NotClasses(ValueError):
    """A task whose predictions are not distributions over classes; the message says what they are."""


@dataclass(frozen=True)
class ClassHead:
    """The class scores a task trains with, and whether they come one per token rather than per text."""

    loss: ModelLoss
    per_token: bool


def class_head(task: Task[Any], spans: bool = False) -> ClassHead:
    """The class head of `task`; `spans`: QA's start and end positions count as two heads.

    Raises:
        NotClasses: for a task that generates, compares answers, or has no softmax over classes.
    """
    step = task.training_step()
    if not isinstance(step, ModelLoss):
        raise NotClasses("its loss compares answers to a prompt (a preferred and a rejected one, rewards, "
                         "sampled completions) instead of scoring classes")
    if task.generation is not None:
        raise NotClasses("it generates text, a token at a time over the whole vocabulary, instead of scoring "
                         "fixed classes")
    if step.objective is Objective.other:
        raise NotClasses("its head is not one softmax over classes (multi-label and regression heads are not)")
    if step.objective is Objective.spans and not spans:
        raise NotClasses("it picks an answer span across the windows of a context, not a class per prediction")
    return ClassHead(step, per_token=step.unit is not LossUnit.rows or step.objective is Objective.spans)


def same_family(a: TaskConfig, b: TaskConfig) -> bool:
    """Whether two runs' tasks are one task family: the same task settings, as `sentiment` and
    `text_classification` share theirs."""
    return type(a) is type(b)


def label_difference(labels: list[str], others: list[str]) -> str | None:
    """How the label set `others` differs from `labels` ("lacks X and adds Y"); None for the same names."""
    lacks, adds = [n for n in labels if n not in others], [n for n in others if n not in labels]
    parts = ([f"lacks {', '.join(lacks)}"] if lacks else []) + ([f"adds {', '.join(adds)}"] if adds else [])
    return " and ".join(parts) or None


def in_order(logits: np.ndarray, labels: list[str], order: list[str]) -> np.ndarray:
    """`logits`, whose last axis holds the classes `labels`, with that axis in the order of `order`
    (the same names)."""
    return logits[..., [labels.index(name) for name in order]]


def same_tokens(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    """Whether two tokenizers split text into the same token ids: the same vocabulary."""
    return bool(a.get_vocab() == b.get_vocab())
