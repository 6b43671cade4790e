"""Sequence classification: `sentiment`, `text_classification` and `pair_classification`.

One text per row, or two for `pair_classification` (NLI, paraphrase: encoded together as one
sequence with the tokenizer's separator). `task.problem` picks the head:

- `single_label`: one class per row (softmax). Labels may be names or integers; the label set
  comes from `data.label_names` (integer labels then index into it) or from the training data.
- `multi_label`: a list of classes per row (one sigmoid per class, `task.threshold`).
- `regression`: one number per row (a single output trained with MSE).

The label set is stored in the run directory so eval and predict map ids back to the same names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ftcli.config.schema import DataConfig, TaskConfig
from ftcli.data.labels import INTEGER, label_key, single_label
from ftcli.data.readers import Row
from ftcli.data.splits import Splits, require_columns
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.engine.step import Collate, LossUnit, ModelLoss, Objective, TrainingStep
from ftcli.errors import DataError
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.bound import LogitsTask
from ftcli.tasks.notes import WithoutNotes, add_notes, cut_rows, is_blank

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from ftcli.engine.inference import Outputs
    from ftcli.models.sources import ModelClass


SCORE = "score"  # the one "label" of a regression run


class Problem(str, Enum):
    single_label = "single_label"
    multi_label = "multi_label"
    regression = "regression"


@dataclass
class ClassificationConfig(TaskConfig):
    name: str = "text_classification"
    max_length: int = 128  # tokens per text (per pair for pair_classification); longer is truncated
    problem: Problem = Problem.single_label  # multi_label: a list of labels per row; regression: a number
    threshold: float = 0.5  # multi_label: a class is predicted when its probability reaches this

    def validate(self) -> list[str]:
        if not 0.0 < self.threshold < 1.0:
            return [f"task.threshold={self.threshold} must be between 0 and 1"]
        return []

    def text_columns(self, data: DataConfig) -> list[str]:
        return [data.text_column]

    def classifies_by_label(self) -> bool:
        return self.problem is Problem.single_label


class SequenceClassification:
    """The registered kind; `bind` gives the `ClassificationTask` that encodes and scores."""

    def __init__(self, pairs: bool = False) -> None:
        self.pairs = pairs  # rows hold data.text_column and data.text_pair_column

    def best_metric(self, task: ClassificationConfig) -> str:
        return {Problem.single_label: "accuracy", Problem.multi_label: "f1_micro", Problem.regression: "pearson"}[
            task.problem
        ]

    def model_class(self) -> ModelClass:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def model_config(self, task: ClassificationConfig, model: PretrainedConfig) -> dict[str, Any]:
        """Settings of the model config this task needs beyond the labels: the loss to train with."""
        return {"problem_type": f"{task.problem.value}_classification" if task.problem is not Problem.regression
                else "regression"}

    def label_names(self, splits: Splits, task: ClassificationConfig, data: DataConfig) -> list[str]:
        if task.problem is Problem.regression:
            return [SCORE]
        if data.label_names is not None:
            return list(data.label_names)
        rows, source = splits["train"], splits.sources["train"]
        require_columns(rows, {"data.text_column": data.text_column, "data.label_column": data.label_column}, source)
        if task.problem is Problem.multi_label:
            return ordered({label_key(v) for index, row in enumerate(rows)
                            for v in _label_list(row[data.label_column], source, index)})
        return single_labels(rows, data.label_column, source)

    def bind(
        self, cfg: ClassificationConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> ClassificationTask:
        return ClassificationTask(self, cfg, data, labels, tokenizer, self.pairs, frozen=frozen)


@dataclass
class ClassificationTask(LogitsTask[ClassificationConfig]):
    """Sequence classification bound to a run: one logits row per text (or pair of texts)."""

    pairs: bool = False  # rows hold data.text_column and data.text_pair_column

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        task, data, tokenizer = self.cfg, self.data, self.tokenizer
        columns = {"data.text_column": data.text_column}
        if self.pairs:
            columns["data.text_pair_column"] = data.text_pair_column
        if with_labels:
            columns["data.label_column"] = data.label_column
        require_columns(rows, columns, source)
        texts = [_texts(rows, data.text_column, source, "data.text_column")]
        if self.pairs:
            texts.append(_texts(rows, data.text_pair_column, source, "data.text_pair_column"))
        encoded = tokenizer(*texts, truncation=True, max_length=task.max_length)
        features = [{key: encoded[key][i] for key in encoded} for i in range(len(rows))]
        add_notes(features, cut_rows(tokenizer, encoded, task.max_length, *texts),
                  [any(is_blank(column[i]) for column in texts) for i in range(len(rows))])
        if with_labels:
            target = self._target(source)
            for index, (feature, row) in enumerate(zip(features, rows)):
                feature["labels"] = target(row[data.label_column], index)
        return features

    def _target(self, source: str) -> Callable[[Any, int], Any]:
        """What the model is trained to output for one raw label: a class id, a multi-hot row or a number."""
        task, data, labels = self.cfg, self.data, self.labels
        if task.problem is Problem.regression:
            return lambda value, index: _number(value, source, index, data.label_column)
        to_id = label_lookup(labels, data.label_names is not None)
        if task.problem is Problem.multi_label:
            def multi_hot(value: Any, index: int) -> list[float]:
                row = [0.0] * len(labels)
                for item in _label_list(value, source, index):
                    row[label_id(item, to_id, labels, source, index)] = 1.0
                return row
            return multi_hot
        return lambda value, index: label_id(value, to_id, labels, source, index)

    def collator(self) -> Collate:
        from transformers import DataCollatorWithPadding

        return WithoutNotes(DataCollatorWithPadding(self.tokenizer))

    def training_step(self) -> TrainingStep:
        single = self.cfg.problem is Problem.single_label
        return ModelLoss(LossUnit.rows, Objective.classes if single else Objective.other)

    def metrics(self, logits: np.ndarray, features: list[Feature]) -> dict[str, Any]:
        from ftcli.tasks import metrics

        task, labels = self.cfg, self.labels
        references = np.array([f["labels"] for f in features])
        if task.problem is Problem.regression:
            return metrics.regression_metrics(logits[:, 0], references)
        if task.problem is Problem.multi_label:
            return metrics.multilabel_metrics((_sigmoid(logits) >= task.threshold).astype(int),
                                              references.astype(int), labels)
        return metrics.classification_metrics(logits.argmax(-1), references, labels)

    def prediction_fields(self) -> tuple[str, ...]:
        return {Problem.single_label: ("label", "probs"), Problem.multi_label: ("labels", "probs"),
                Problem.regression: (SCORE,)}[self.cfg.problem]

    def predictions(self, outputs: Outputs, features: list[Feature]) -> list[dict[str, Any]]:
        task, labels, logits = self.cfg, self.labels, np.asarray(outputs.logits)  # one row per text
        if task.problem is Problem.regression:
            return [{SCORE: round(float(v), 6)} for v in logits[:, 0]]
        if task.problem is Problem.multi_label:
            probs = _sigmoid(logits)
            return [
                {"labels": [name for name, v in zip(labels, p) if v >= task.threshold],
                 "probs": {name: round(float(v), 6) for name, v in zip(labels, p)}}
                for p in probs
            ]
        return label_predictions(logits, labels)


def label_predictions(logits: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Each row's likeliest label and every label's probability (the softmax of its logits)."""
    shifted = logits - logits.max(-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    return [
        {"label": labels[int(p.argmax())], "probs": {name: round(float(v), 6) for name, v in zip(labels, p)}}
        for p in probs
    ]


@dataclass
class PairClassificationConfig(ClassificationConfig):
    name: str = "pair_classification"
    max_length: int = 256

    def text_columns(self, data: DataConfig) -> list[str]:
        return [data.text_column, data.text_pair_column]


def _texts(rows: list[Row], column: str, source: str, setting: str) -> list[str]:
    for index, row in enumerate(rows):
        if not isinstance(row[column], str):
            raise DataError(
                f"{source}: record {index}: {column!r} is {type(row[column]).__name__}, not text",
                hint=f"{setting} must name a column of strings",
            )
    return [row[column] for row in rows]


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def _label_list(value: Any, source: str, index: int) -> list[Any]:
    """A multi-label row's labels: a list (possibly empty), or one bare label."""
    if isinstance(value, list):
        return value
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    raise DataError(
        f"{source}: record {index} has labels {value!r}; task.problem=multi_label needs a list of labels",
        hint='write the labels as a list, e.g. "label": ["sports", "politics"] (an empty list for none)',
    )


def _number(value: Any, source: str, index: int, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past the largest float
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise DataError(
            f"{source}: record {index} has {column}={value!r}; task.problem=regression needs a finite number",
            hint="fix the record, or point data.label_column at the numeric column",
        )
    return number


def single_labels(rows: list[Row], column: str, source: str) -> list[str]:
    """The label set of single-label training rows, in order (integers by value).

    Raises:
        DataError: for a row without a single label, or rows that all share one label.
    """
    keys = {single_label(row[column], source, index, column) for index, row in enumerate(rows)}
    if len(keys) == 1:
        raise DataError(
            f"{source}: every training row has the label {next(iter(keys))!r}; "
            "single-label classification needs at least two labels",
            hint="add rows of the other labels, list them in data.label_names, "
            "or use task.problem=regression for a number",
        )
    return ordered(keys)


def ordered(keys: set[str]) -> list[str]:
    """Label names in order: integers by value, anything else as text."""
    try:
        if all(INTEGER.fullmatch(k) and str(int(k)) == k for k in keys):
            return sorted(keys, key=int)
    except ValueError:  # a label of more digits than int() converts: ordered as text
        pass
    return sorted(keys)


def label_lookup(labels: list[str], indexable: bool) -> dict[str, int]:
    """Label name -> id; with `indexable` (the label set is `data.label_names`) an integer label is an index too."""
    lookup = {name: i for i, name in enumerate(labels)}
    if indexable:  # integer labels index into configured names
        lookup.update({str(i): i for i in range(len(labels)) if str(i) not in lookup})
    return lookup


def label_id(value: Any, to_id: dict[str, int], labels: list[str], source: str, index: int) -> int:
    """The id of one row's raw label (`to_id`: `label_lookup`'s); a label outside the set is a data error."""
    key = label_key(value)
    if key not in to_id:
        raise DataError(
            f"{source}: record {index} has label {value!r}, which is not in the label set {labels}",
            hint="fix the record, or list every label in data.label_names",
        )
    return to_id[key]


TASKS.register("sentiment", ClassificationConfig)(SequenceClassification())
TASKS.register("text_classification", ClassificationConfig)(SequenceClassification())
TASKS.register("pair_classification", PairClassificationConfig)(SequenceClassification(pairs=True))
