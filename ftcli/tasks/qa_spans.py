"""From start/end logits of a row's windows to one answer span (or "no answer").

Per window, the `n_best` highest start and end logits are paired; a pair is a candidate when
both tokens are context tokens, the end is not before the start, and the span is at most
`max_answer_length` tokens. A span scores start logit + end logit (comparable across windows,
as in the SQuAD reference implementations); the row's answer is its best span over all windows.
With unanswerable questions allowed, the null score (CLS start + CLS end logit, the lowest over
the windows: the window most sure there *is* an answer decides) wins when it beats the best span
by more than `null_threshold`.

The reported `score` is a probability: the start probability times the end probability of the
chosen tokens under the softmax of their own window, so it lies in [0, 1] whichever wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from ftcli.tasks.qa_windows import Window


@dataclass(frozen=True)
class SpanRules:
    """How spans are chosen: see the module docstring."""

    n_best: int = 20
    max_answer_length: int = 30  # tokens
    allow_unanswerable: bool = True
    null_threshold: float = 0.0


@dataclass(frozen=True)
class Span:
    """A row's answer: `context[start:end] == text`; start and end are None for "no answer"."""

    text: str
    score: float
    start: int | None
    end: int | None

    def as_prediction(self) -> dict[str, object]:
        return {"answer": self.text, "score": round(self.score, 6), "start": self.start, "end": self.end}


NO_ANSWER = Span("", 0.0, None, None)


def best_span(windows: list[Window], logits: list[np.ndarray], rules: SpanRules) -> Span:
    """The answer of one row from its windows and their (tokens, 2) start/end logits."""
    best: tuple[float, Span] | None = None
    null: tuple[float, Span] | None = None
    for window, window_logits in zip(windows, logits):
        starts, ends = window_logits[:, 0], window_logits[:, 1]
        start_probs, end_probs = _softmax(starts), _softmax(ends)
        cls = window.cls_index
        null_score = float(starts[cls] + ends[cls])
        if null is None or null_score < null[0]:
            null = (null_score, Span("", float(start_probs[cls] * end_probs[cls]), None, None))
        for score, i, j in _candidates(window, starts, ends, rules):
            if best is None or score > best[0]:
                # candidates are context tokens, which all have offsets
                first, last = cast("tuple[int, int]", window.offsets[i])[0], cast("tuple[int, int]", window.offsets[j])[1]
                span = Span(window.context[first:last], float(start_probs[i] * end_probs[j]), first, last)
                best = (score, span)
    if rules.allow_unanswerable and null is not None and (best is None or null[0] - best[0] > rules.null_threshold):
        return null[1]
    return best[1] if best is not None else NO_ANSWER


def _candidates(window: Window, starts: np.ndarray, ends: np.ndarray, rules: SpanRules) -> list[tuple[float, int, int]]:
    """(score, start token, end token) of every valid pair among the top start and end tokens."""
    count = len(window.offsets)
    top_starts = np.argsort(starts[:count])[::-1][: rules.n_best]
    top_ends = np.argsort(ends[:count])[::-1][: rules.n_best]
    found = []
    for i in top_starts:
        if window.offsets[i] is None:
            continue
        for j in top_ends:
            if window.offsets[j] is None or j < i or j - i + 1 > rules.max_answer_length:
                continue
            found.append((float(starts[i] + ends[j]), int(i), int(j)))
    return found


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()
