"""Extractive question answering (`qa`): the answer is a span of the context, or nothing.

Rows are SQuAD-style: `task.question_column` and `task.context_column` hold strings and
`task.answers_column` holds `{"text": [...], "answer_start": [...]}` (character offsets into the
context); empty lists mark an unanswerable question (SQuAD v2). Only the first answer is learnt;
every answer counts when scoring.

One row can become several features: a long context is cut into overlapping windows
(`qa_windows.py`), each carrying its row's index. `metrics` and `predictions` group the windows
of each row back together (`qa_spans.py` picks one span over them), so they return one result
per row although `encode` returned one feature per window. Scores are SQuAD exact match and F1
(`ftcli.tasks.metrics.SquadMetrics`); `predict` gives `{"answer", "score", "start", "end"}` with
character offsets into the context (`start`/`end` null and `answer` empty for "no answer").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ftcli.config.schema import DataConfig, TaskConfig
from ftcli.data.readers import Row
from ftcli.data.splits import Splits, require_columns, text_field
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.engine.step import Collate, LossUnit, ModelLoss, Objective, TrainingStep
from ftcli.errors import DataError
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.bound import LogitsTask, require_fast_tokenizer
from ftcli.tasks.notes import NOTE, RowNote, is_blank
from ftcli.tasks.qa_spans import Span, SpanRules, best_span
from ftcli.tasks.qa_windows import WINDOW, Answer, Window, build_windows

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from ftcli.engine.inference import Outputs
    from ftcli.models.sources import ModelClass

log = logging.getLogger(__name__)

LABELS = ["start", "end"]  # the head's two outputs per token; QA models size their head by num_labels


@dataclass
class QaConfig(TaskConfig):
    name: str = "qa"
    max_length: int = 384  # tokens per window: question, context part and special tokens
    doc_stride: int = 128  # tokens of context shared by neighbouring windows of a long context
    question_column: str = "question"
    context_column: str = "context"
    answers_column: str = "answers"  # {"text": [...], "answer_start": [...]}; empty lists: unanswerable
    n_best: int = 20  # top start and end tokens paired per window when looking for the best span
    max_answer_length: int = 30  # tokens; longer spans are never predicted
    allow_unanswerable: bool = True  # predict "no answer" when the null score beats the best span
    null_threshold: float = 0.0  # how much the null score must beat the best span by (logits)

    def validate(self) -> list[str]:
        problems = super().validate()
        if not 0 <= self.doc_stride < self.max_length:
            problems.append(f"task.doc_stride={self.doc_stride} must be at least 0 and below task.max_length")
        if self.n_best < 1:
            problems.append(f"task.n_best={self.n_best} must be at least 1")
        if self.max_answer_length < 1:
            problems.append(f"task.max_answer_length={self.max_answer_length} must be at least 1")
        columns = [self.question_column, self.context_column, self.answers_column]
        if len(set(columns)) < len(columns):
            problems.append(f"task.question_column, context_column and answers_column must differ: {columns}")
        return problems

    @property
    def rules(self) -> SpanRules:
        return SpanRules(self.n_best, self.max_answer_length, self.allow_unanswerable, self.null_threshold)


class QuestionAnswering:
    """The registered kind; `bind` gives the `QaTask` that encodes and scores."""

    def best_metric(self, task: QaConfig) -> str:
        return "f1"  # SQuAD token F1

    def model_class(self) -> ModelClass:
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering

    def model_config(self, task: QaConfig, model: PretrainedConfig) -> dict[str, Any]:
        return {}

    def label_names(self, splits: Splits, task: QaConfig, data: DataConfig) -> list[str]:
        return list(LABELS)

    def bind(self, cfg: QaConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
             frozen: FrozenModels = NO_FROZEN_MODELS) -> QaTask:
        return QaTask(self, cfg, data, labels, tokenizer, frozen=frozen)


class QaTask(LogitsTask[QaConfig]):
    """Extractive QA bound to a run: start and end logits per token of each window, one span per row."""

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """One feature per window, rows in order; each holds its `Window` (and targets `with_labels`)."""
        task, tokenizer = self.cfg, self.tokenizer
        require_fast_tokenizer(tokenizer, "qa", "for character offsets and context windows")
        columns = {"task.question_column": task.question_column, "task.context_column": task.context_column}
        if with_labels:
            columns["task.answers_column"] = task.answers_column
        require_columns(rows, columns, source)
        questions = [text_field(row, task.question_column, index, source) for index, row in enumerate(rows)]
        contexts = [text_field(row, task.context_column, index, source) for index, row in enumerate(rows)]
        answers = (
            [_answers(row, index, contexts[index], task, source) for index, row in enumerate(rows)]
            if with_labels else None
        )
        features = build_windows(tokenizer, questions, contexts, task.max_length, task.doc_stride, answers, source)
        for feature in features:  # windows cut nothing: a long context is read whole, window by window
            row = feature[WINDOW].row
            feature[NOTE] = RowNote(row, empty=is_blank(questions[row]) or is_blank(contexts[row]))
        if len(features) > len(rows):
            log.info("%s: %d rows became %d windows of task.max_length=%d tokens", source, len(rows),
                     len(features), task.max_length)
        return features

    def collator(self) -> Collate:
        from transformers import DataCollatorWithPadding

        return ModelInputs(DataCollatorWithPadding(self.tokenizer))

    def training_step(self) -> TrainingStep:
        return ModelLoss(LossUnit.rows, Objective.spans)  # start and end cross-entropy, a mean over windows

    def logits_of(self, out: Any) -> torch.Tensor:
        """The head's start and end logits (a `QuestionAnsweringModelOutput`'s) stacked as
        (batch, tokens, 2), read like per-token logits."""
        import torch

        return torch.stack([out.start_logits, out.end_logits], dim=-1)

    def metrics(self, logits: list[np.ndarray], features: list[Feature]) -> dict[str, Any]:
        from ftcli.tasks.metrics import squad_metrics

        rows = _rows(logits, features)
        predicted = [best_span(windows, row_logits, self.cfg.rules).text for windows, row_logits in rows]
        # scored features carry their labels, so every window has its gold answers
        return squad_metrics(predicted, [cast("list[str]", windows[0].gold) for windows, _ in rows])

    def predictions(self, outputs: Outputs, features: list[Feature]) -> list[dict[str, Any]]:
        """One `{"answer", "score", "start", "end"}` per row: `context[start:end] == answer`."""
        rows = _rows(outputs.logits, features)
        spans: list[Span] = [best_span(windows, row_logits, self.cfg.rules) for windows, row_logits in rows]
        return [span.as_prediction() for span in spans]

    def prediction_fields(self) -> tuple[str, ...]:
        return ("answer", "score", "start", "end")


class ModelInputs:
    """A collator that passes each feature's model inputs on and leaves its `Window` and `RowNote` behind."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        return self.collate([{k: v for k, v in f.items() if k not in (WINDOW, NOTE)} for f in features])


def _rows(
    logits: np.ndarray | list[np.ndarray], features: list[Feature]
) -> list[tuple[list[Window], list[np.ndarray]]]:
    """The windows and their (tokens, 2) logits grouped per row, in row order (windows are contiguous)."""
    pairs = [(feature[WINDOW], window_logits) for feature, window_logits in zip(features, logits)]
    grouped = []
    for _, group in groupby(pairs, key=lambda pair: pair[0].row):
        windows, row_logits = zip(*group)
        grouped.append((list(windows), list(row_logits)))
    return grouped


def _answers(row: Row, index: int, context: str, task: QaConfig, source: str) -> list[Answer]:
    """The row's gold answers, each checked to sit at its `answer_start` in the context."""
    where, column = f"{source}: record {index}", task.answers_column
    value = row[column]
    shape = f'{column!r} must be {{"text": [...], "answer_start": [...]}} (empty lists: unanswerable)'
    if not isinstance(value, dict) or not {"text", "answer_start"} <= set(value):
        raise DataError(f"{where}: {column!r} is {value!r}", hint=shape)
    texts, starts = value["text"], value["answer_start"]
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        raise DataError(f"{where}: {column!r} needs two lists of the same length, got {value!r}", hint=shape)
    answers = []
    for k, (text, start) in enumerate(zip(texts, starts)):
        if (not isinstance(text, str) or not text.strip() or isinstance(start, bool) or not isinstance(start, int)
                or start < 0):
            raise DataError(
                f"{where}: answer {k} is text={text!r}, answer_start={start!r}",
                hint="each answer is a non-empty string and the character offset (from 0) where it starts",
            )
        found = context[start:start + len(text)]
        if found != text:
            at = context.find(text)
            raise DataError(
                f"{where}: answer {k} {text!r} is not at answer_start={start} of the context (found {found!r} there)",
                hint=(f"answer_start counts characters from 0; this text first occurs at {at}" if at >= 0
                      else "the answer text does not occur in the context at all; fix the text or the context"),
            )
        answers.append(Answer(text, start))
    return answers


TASKS.register("qa", QaConfig)(QuestionAnswering())
