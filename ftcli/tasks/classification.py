"""Single-label sequence classification: `sentiment` and `text_classification`.

Labels may be names or integers. The label set comes from `data.label_names` when given (integer
labels then index into it) or else from the training data, and is stored in the run directory so
eval and predict map ids back to the same names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ftcli.config.schema import DataConfig, TaskConfig
from ftcli.data import Splits, require_columns
from ftcli.errors import DataError
from ftcli.readers import Row
from ftcli.tasks.base import TASKS


INTEGER = re.compile(r"-?[0-9]+")


@dataclass
class ClassificationConfig(TaskConfig):
    name: str = "text_classification"
    max_length: int = 128  # tokens per text; longer texts are truncated


class SequenceClassification:
    best_metric = "accuracy"

    def model_class(self) -> type:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def label_names(self, splits: Splits, task: TaskConfig, data: DataConfig) -> list[str]:
        if data.label_names is not None:
            return list(data.label_names)
        rows = splits["train"]
        require_columns(rows, {"data.label_column": data.label_column}, splits.sources["train"])
        keys = {label_key(row[data.label_column]) for row in rows}
        if all(INTEGER.fullmatch(k) and str(int(k)) == k for k in keys):
            return sorted(keys, key=int)
        return sorted(keys)

    def encode(
        self,
        rows: list[Row],
        tokenizer: Any,
        task: TaskConfig,
        data: DataConfig,
        labels: list[str],
        source: str,
        with_labels: bool = True,
    ) -> list[dict[str, Any]]:
        columns = {"data.text_column": data.text_column}
        if with_labels:
            columns["data.label_column"] = data.label_column
        require_columns(rows, columns, source)
        texts = []
        for index, row in enumerate(rows):
            text = row[data.text_column]
            if not isinstance(text, str):
                raise DataError(
                    f"{source}: record {index}: {data.text_column!r} is {type(text).__name__}, not text",
                    hint=f"data.text_column must name a column of strings",
                )
            texts.append(text)
        encoded = tokenizer(texts, truncation=True, max_length=task.max_length)
        features = [{key: encoded[key][i] for key in encoded} for i in range(len(rows))]
        if with_labels:
            to_id = _label_lookup(labels, data.label_names is not None)
            for index, (feature, row) in enumerate(zip(features, rows)):
                feature["labels"] = _label_id(row[data.label_column], to_id, labels, source, index)
        return features

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def metrics(
        self, logits: np.ndarray, features: list[dict[str, Any]], task: TaskConfig, labels: list[str]
    ) -> dict[str, Any]:
        from ftcli.metrics import classification_metrics

        return classification_metrics(logits.argmax(-1), np.array([f["labels"] for f in features]), labels)

    def predictions(
        self, logits: np.ndarray, features: list[dict[str, Any]], labels: list[str]
    ) -> list[dict[str, Any]]:
        shifted = logits - logits.max(-1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
        return [
            {"label": labels[int(p.argmax())], "probs": {name: round(float(v), 6) for name, v in zip(labels, p)}}
            for p in probs
        ]


def label_key(value: Any) -> str:
    """The label-set name of a raw label: integers (also 1.0 floats and booleans) as digits, text as is."""
    if isinstance(value, (bool, int)) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return str(value)


def _label_lookup(labels: list[str], indexable: bool) -> dict[str, int]:
    lookup = {name: i for i, name in enumerate(labels)}
    if indexable:  # integer labels index into configured names
        lookup.update({str(i): i for i in range(len(labels)) if str(i) not in lookup})
    return lookup


def _label_id(value: Any, to_id: dict[str, int], labels: list[str], source: str, index: int) -> int:
    key = label_key(value)
    if key not in to_id:
        raise DataError(
            f"{source}: record {index} has label {value!r}, which is not in the label set {labels}",
            hint="fix the record, or list every label in data.label_names",
        )
    return to_id[key]


TASKS.register("sentiment", ClassificationConfig)(SequenceClassification())
TASKS.register("text_classification", ClassificationConfig)(SequenceClassification())
