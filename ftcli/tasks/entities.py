"""Entity spans from word tags: which words form each entity, its type and its score.

Chunking is seqeval's (`get_entities`), the same reading the metrics use, so a prediction and
its score never disagree about where an entity starts and ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Words `start` to `end` (exclusive) form one entity of `type`."""

    type: str
    start: int
    end: int
    score: float  # mean over its words of the probability of each word's predicted tag


def entity_spans(tags: Sequence[str], scores: Sequence[float]) -> list[Span]:
    """The entities in one sequence of IOB2 word tags, in order, with per-word tag probabilities averaged."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [
        Span(kind, start, last + 1, sum(scores[start:last + 1]) / (last + 1 - start))
        for kind, start, last in get_entities(list(tags))
    ]
