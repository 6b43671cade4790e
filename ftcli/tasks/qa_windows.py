"""Question-answering windows: one (question, context) row as one or more model inputs.

A context longer than `max_length` tokens (question and special tokens included) is cut into
overlapping windows of the context, `doc_stride` tokens of overlap between neighbours, by the
tokenizer itself (`return_overflowing_tokens`, `truncation="only_second"`): the question is
repeated in every window. Each window keeps a `Window` record: which row it came from and the
character span in the context of each of its context tokens, so span logits read back as text.

Training targets are the tokens of the row's first answer when it lies wholly inside the window,
else the CLS position: "no answer here", which is also what an unanswerable question learns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftcli.errors import DataError

WINDOW = "qa_window"  # the feature key holding a window's `Window`; the collator leaves it out


@dataclass(frozen=True)
class Answer:
    """A gold answer: its text and where it starts in the context (characters)."""

    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Window:
    """What one window needs to turn its start/end logits back into an answer of its row."""

    row: int  # index of the row (question) in the encoded list; its windows share it
    context: str  # the row's whole context; offsets index into it
    offsets: list[tuple[int, int] | None]  # per token: its (start, end) characters in the context; None off-context
    cls_index: int  # the token whose start/end logits score "no answer"
    gold: list[str] | None = None  # the row's gold answer texts ([] when unanswerable); None without labels


def build_windows(
    tokenizer: Any,
    questions: list[str],
    contexts: list[str],
    max_length: int,
    doc_stride: int,
    answers: list[list[Answer]] | None = None,
    source: str = "input",
) -> list[dict[str, Any]]:
    """Features in row order, each row's windows in context order; with `answers`, start/end targets too.

    Every feature holds the model inputs, its `Window` under `WINDOW` and, when `answers` is
    given, `start_positions`/`end_positions`.
    """
    if not questions:
        return []
    _check_room(tokenizer, questions, contexts, max_length, doc_stride, source)
    try:
        encoded = tokenizer(
            questions, contexts, truncation="only_second", max_length=max_length, stride=doc_stride,
            return_overflowing_tokens=True, return_offsets_mapping=True,
        )
    except BaseException as exc:
        # tokenizers raises a plain Exception when the question leaves no room for context, and panics
        # (a pyo3 PanicException, which is no Exception) when the room left is not more than the stride
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise DataError(
            f"{source}: could not split the contexts into windows of task.max_length={max_length} tokens "
            f"with task.doc_stride={doc_stride}: {exc}",
            hint="a question plus the stride must fit in task.max_length with room for context; "
            "raise task.max_length, lower task.doc_stride, or shorten the questions",
        ) from exc
    rows = encoded.pop("overflow_to_sample_mapping")
    offset_mapping = encoded.pop("offset_mapping")
    features = []
    for k, row in enumerate(rows):
        sequence_ids = encoded.sequence_ids(k)
        offsets = [tuple(span) if seq == 1 else None for span, seq in zip(offset_mapping[k], sequence_ids)]
        input_ids = encoded["input_ids"][k]
        cls = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        gold = None if answers is None else [answer.text for answer in answers[row]]
        feature = {key: encoded[key][k] for key in encoded}
        feature[WINDOW] = Window(row, contexts[row], offsets, cls, gold)
        if answers is not None:
            start, end = answer_tokens(encoded, k, answers[row][0] if answers[row] else None, cls)
            feature["start_positions"], feature["end_positions"] = start, end
        features.append(feature)
    return features


def _check_room(
    tokenizer: Any, questions: list[str], contexts: list[str], max_length: int, doc_stride: int, source: str
) -> None:
    """A DataError for the first row whose question leaves its long context no more tokens per window than the stride.

    tokenizers panics on such a row, printing an abort message, where it could raise.
    """
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    for row, question in enumerate(tokenizer(questions, add_special_tokens=False)["input_ids"]):
        room = max_length - specials - len(question)
        if 0 < room <= doc_stride and len(tokenizer(contexts[row], add_special_tokens=False)["input_ids"]) > room:
            raise DataError(
                f"{source}: record {row}: the question takes {len(question)} of task.max_length={max_length} tokens, "
                f"which leaves {room} for the context in each window, not more than task.doc_stride={doc_stride}",
                hint="raise task.max_length, lower task.doc_stride, or shorten the question",
            )


def answer_tokens(encoded: Any, k: int, answer: Answer | None, cls: int) -> tuple[int, int]:
    """The first and last token of `answer` in window `k`, or (cls, cls) when it is not wholly inside it.

    The tokenizer's own character-to-token map finds them; the answer's surrounding whitespace
    (which no token covers) is trimmed first.
    """
    if answer is None:
        return cls, cls
    stripped = answer.text.strip()
    if not stripped:
        return cls, cls
    first = answer.start + answer.text.index(stripped)
    last = first + len(stripped) - 1
    start = encoded.char_to_token(k, first, sequence_index=1)
    end = encoded.char_to_token(k, last, sequence_index=1)
    if start is None or end is None:
        return cls, cls
    return start, end
