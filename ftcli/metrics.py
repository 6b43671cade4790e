"""Metrics as `evaluate` modules that ship with ftcli, so scoring never needs the network.

`evaluate.load("accuracy")` resolves to the Hugging Face Hub; these modules implement the same
`evaluate.Metric` interface locally, computed with scikit-learn. `load_metric` returns a bundled
module by name and hands any other name to `evaluate.load` for users who are online.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

from ftcli.errors import ConfigError


class ClassificationMetrics(evaluate.Metric):
    """Accuracy, macro precision/recall/F1, per-class F1 and the confusion matrix in one pass.

    Pass `labels` (the class ids in label order) and `label_names` so per-class figures are
    keyed by name and classes absent from the references still get a row.
    """

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Single-label classification metrics computed with scikit-learn.",
            citation="",
            inputs_description="predictions and references: integer class ids",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self,
        predictions: list[int],
        references: list[int],
        labels: list[int] | None = None,
        label_names: list[str] | None = None,
    ) -> dict[str, Any]:
        from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

        labels = labels if labels is not None else sorted(set(references) | set(predictions))
        names = label_names if label_names is not None else [str(i) for i in labels]
        precision, recall, f1, _ = precision_recall_fscore_support(
            references, predictions, labels=labels, average="macro", zero_division=0
        )
        _, _, per_class_f1, support = precision_recall_fscore_support(
            references, predictions, labels=labels, average=None, zero_division=0
        )
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "precision_macro": float(precision),
            "recall_macro": float(recall),
            "f1_macro": float(f1),
            "f1_per_class": {name: float(v) for name, v in zip(names, per_class_f1)},
            "support": {name: int(v) for name, v in zip(names, support)},
            "confusion_matrix": confusion_matrix(references, predictions, labels=labels).tolist(),
        }


BUNDLED: dict[str, type[evaluate.Metric]] = {"classification": ClassificationMetrics}


def load_metric(name: str) -> evaluate.Metric:
    """A bundled metric module by name, or `evaluate.load(name)` for any other."""
    if name in BUNDLED:
        return BUNDLED[name](keep_in_memory=True)
    try:
        return evaluate.load(name)
    except Exception as exc:  # evaluate raises network, file and import errors alike
        raise ConfigError(
            f"metric {name!r} is not bundled with ftcli and could not be loaded with evaluate.load: {exc}",
            hint=f"bundled metrics: {', '.join(BUNDLED)}; other names need network access once",
        ) from exc


def classification_metrics(predictions: np.ndarray, references: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    return load_metric("classification").compute(
        predictions=predictions.tolist(),
        references=references.tolist(),
        labels=list(range(len(label_names))),
        label_names=label_names,
    )
