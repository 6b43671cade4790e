"""Metrics as `evaluate` modules that ship with ftcli, so scoring never needs the network.

`evaluate.load("accuracy")` resolves to the Hugging Face Hub; these modules implement the same
`evaluate.Metric` interface locally, computed with scikit-learn (classification), seqeval
(entities), SQuAD's rules (extractive answers), rouge-score and sacrebleu (generated text).
`load_metric` returns a bundled module by name and hands any other name to `evaluate.load` for
users who are online.
"""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter
from typing import Any, ClassVar

import datasets
import evaluate
import numpy as np

from ftcli.errors import ConfigError


class BundledMetric(evaluate.Metric):
    """A metric module computed locally; each subclass declares what its `evaluate.MetricInfo` says.

    `summary` and `inputs` are the info's description and inputs description; `prediction` and
    `reference` are the `datasets` features of one prediction and one reference.
    """

    summary: ClassVar[str]
    inputs: ClassVar[str]
    prediction: ClassVar[Any]
    reference: ClassVar[Any]

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.summary,
            citation="",
            inputs_description=self.inputs,
            features=datasets.Features({"predictions": self.prediction, "references": self.reference}),
        )


class ClassificationMetrics(BundledMetric):
    """Accuracy, macro precision/recall/F1, per-class F1 and the confusion matrix in one pass.

    Pass `labels` (the class ids in label order) and `label_names` so per-class figures are
    keyed by name and classes absent from the references still get a row.
    """

    summary = "Single-label classification metrics computed with scikit-learn."
    inputs = "predictions and references: integer class ids"
    prediction, reference = datasets.Value("int64"), datasets.Value("int64")

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


class EntityMetrics(BundledMetric):
    """Entity-level micro precision/recall/F1, the same per entity type, and tag accuracy, with seqeval.

    An entity counts as found only when its type and its exact word span match. `strict=False`
    reads tags as conlleval does (an `I-` after `O` starts an entity); `strict=True` is seqeval's
    strict IOB2 mode, where such an entity is not counted. Pass `entity_types` so every type gets
    a row, also those absent from both sides.
    """

    summary = "Entity-level sequence labelling metrics computed with seqeval."
    inputs = "predictions and references: one list of IOB2 tags per sequence"
    prediction = datasets.Sequence(datasets.Value("string"))
    reference = datasets.Sequence(datasets.Value("string"))

    def _compute(
        self,
        predictions: list[list[str]],
        references: list[list[str]],
        entity_types: list[str] | None = None,
        strict: bool = False,
    ) -> dict[str, Any]:
        from seqeval.metrics import accuracy_score, classification_report
        from seqeval.scheme import IOB2

        mode = {"mode": "strict", "scheme": IOB2} if strict else {}
        with warnings.catch_warnings():  # with no entity at all, the (unused) macro average is a mean of nothing
            warnings.simplefilter("ignore", RuntimeWarning)
            report = classification_report(references, predictions, output_dict=True, zero_division=0, **mode)
        micro = report.pop("micro avg")
        per_type = {
            kind: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for kind in sorted(entity_types or [])
        }
        for kind, scores in report.items():
            if not kind.endswith(" avg"):
                per_type[kind] = {
                    "precision": float(scores["precision"]),
                    "recall": float(scores["recall"]),
                    "f1": float(scores["f1-score"]),
                    "support": int(scores["support"]),
                }
        return {
            "precision": float(micro["precision"]),
            "recall": float(micro["recall"]),
            "f1": float(micro["f1-score"]),
            "token_accuracy": float(accuracy_score(references, predictions)) if references else 0.0,
            "per_type": dict(sorted(per_type.items())),
        }


class MultiLabelMetrics(BundledMetric):
    """Exact-match accuracy, micro and macro precision/recall/F1 and per-class F1 for multi-hot rows."""

    summary = "Multi-label classification metrics computed with scikit-learn."
    inputs = "predictions and references: one 0/1 row per example, one column per class"
    prediction = datasets.Sequence(datasets.Value("int64"))
    reference = datasets.Sequence(datasets.Value("int64"))

    def _compute(
        self, predictions: list[list[int]], references: list[list[int]], label_names: list[str] | None = None
    ) -> dict[str, Any]:
        from sklearn.metrics import accuracy_score, precision_recall_fscore_support

        predicted, gold = np.array(predictions), np.array(references)
        names = label_names if label_names is not None else [str(i) for i in range(gold.shape[1])]
        scores: dict[str, Any] = {"exact_match": float(accuracy_score(gold, predicted))}  # every class right
        for average in ("micro", "macro"):
            precision, recall, f1, _ = precision_recall_fscore_support(
                gold, predicted, average=average, zero_division=0
            )
            scores.update({f"precision_{average}": float(precision), f"recall_{average}": float(recall),
                           f"f1_{average}": float(f1)})
        _, _, per_class, support = precision_recall_fscore_support(gold, predicted, average=None, zero_division=0)
        scores["f1_per_class"] = {name: float(v) for name, v in zip(names, per_class)}
        scores["support"] = {name: int(v) for name, v in zip(names, support)}
        return scores


class RegressionMetrics(BundledMetric):
    """MSE, RMSE, MAE and Pearson/Spearman correlation (scikit-learn and scipy)."""

    summary = "Regression metrics computed with scikit-learn and scipy."
    inputs = "predictions and references: one number per example"
    prediction, reference = datasets.Value("float64"), datasets.Value("float64")

    def _compute(self, predictions: list[float], references: list[float]) -> dict[str, Any]:
        from scipy.stats import pearsonr, spearmanr
        from sklearn.metrics import mean_absolute_error, mean_squared_error

        mse = float(mean_squared_error(references, predictions))
        constant = len(set(predictions)) < 2 or len(set(references)) < 2  # correlation undefined
        return {
            "mse": mse,
            "rmse": mse ** 0.5,
            "mae": float(mean_absolute_error(references, predictions)),
            "pearson": 0.0 if constant else float(pearsonr(predictions, references)[0]),
            "spearman": 0.0 if constant else float(spearmanr(predictions, references)[0]),
        }


ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lowercase, drop punctuation, the articles a/an/the, extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


PUNCTUATION = frozenset(string.punctuation)


def answer_exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def answer_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised answers; two empty answers agree (1.0), one empty scores 0.0."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


class SquadMetrics(BundledMetric):
    """Exact match and F1 of extractive answers, SQuAD v2 style, each in [0, 1].

    The Hub's `squad`/`squad_v2` metrics are not used because `evaluate.load` fetches their code
    from the network; this module computes the same figures offline. Each prediction is scored
    against every gold answer of its question with SQuAD's normalisation (`normalize_answer`) and
    the best score counts. A question with no gold answer (unanswerable) scores 1 for an empty
    prediction and 0 otherwise. When both kinds of question are present, `HasAns_*` and
    `NoAns_*` give the same figures over each kind.
    """

    summary = "SQuAD v2 exact match and token F1, computed locally."
    inputs = (
        "predictions: one answer string per question ('' for no answer); "
        "references: the list of gold answer strings per question ([] when unanswerable)"
    )
    prediction, reference = datasets.Value("string"), datasets.Sequence(datasets.Value("string"))

    def _compute(self, predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
        exact, f1, answerable = [], [], []
        for prediction, golds in zip(predictions, references):
            golds = [gold for gold in golds if normalize_answer(gold)]  # blank gold answers mean "no answer"
            answerable.append(bool(golds))
            exact.append(max(answer_exact_match(prediction, gold) for gold in golds or [""]))
            f1.append(max(answer_f1(prediction, gold) for gold in golds or [""]))
        scores: dict[str, Any] = _squad_scores("", exact, f1)
        if any(answerable) and not all(answerable):
            for prefix, keep in (("HasAns_", True), ("NoAns_", False)):
                chosen = [i for i, has in enumerate(answerable) if has == keep]
                scores.update(_squad_scores(prefix, [exact[i] for i in chosen], [f1[i] for i in chosen]))
        return scores


def _squad_scores(prefix: str, exact: list[float], f1: list[float]) -> dict[str, Any]:
    count = len(exact)
    return {
        f"{prefix}exact_match": sum(exact) / count if count else 0.0,
        f"{prefix}f1": sum(f1) / count if count else 0.0,
        f"{prefix}total": count,
    }


class RougeMetrics(BundledMetric):
    """ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures (0-1), averaged over examples, with rouge-score.

    Tokens are stemmed (Porter), as in the `evaluate` rouge module; ROUGE-Lsum splits summaries
    into sentences at newlines.
    """

    summary = "ROUGE computed with rouge-score."
    inputs = "predictions and references: one string per example"
    prediction, reference = datasets.Value("string"), datasets.Value("string")

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, Any]:
        from rouge_score import rouge_scorer

        kinds = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
        scorer = rouge_scorer.RougeScorer(kinds, use_stemmer=True)
        totals = dict.fromkeys(kinds, 0.0)
        for prediction, reference in zip(predictions, references):
            for kind, score in scorer.score(reference, prediction).items():
                totals[kind] += score.fmeasure
        return {kind: total / len(predictions) if predictions else 0.0 for kind, total in totals.items()}


class BleuMetrics(BundledMetric):
    """Corpus BLEU and chrF (0-100) with sacrebleu's default tokenisation, one reference per example."""

    summary = "BLEU and chrF computed with sacrebleu."
    inputs = "predictions and references: one string per example"
    prediction, reference = datasets.Value("string"), datasets.Value("string")

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, Any]:
        import sacrebleu

        return {
            "bleu": float(sacrebleu.corpus_bleu(predictions, [references]).score),
            "chrf": float(sacrebleu.corpus_chrf(predictions, [references]).score),
        }


BUNDLED: dict[str, type[evaluate.Metric]] = {
    "bleu": BleuMetrics,
    "classification": ClassificationMetrics,
    "multilabel": MultiLabelMetrics,
    "regression": RegressionMetrics,
    "rouge": RougeMetrics,
    "seqeval": EntityMetrics,
    "squad": SquadMetrics,
}


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


def entity_metrics(
    predictions: list[list[str]], references: list[list[str]], entity_types: list[str], strict: bool
) -> dict[str, Any]:
    return load_metric("seqeval").compute(
        predictions=predictions, references=references, entity_types=entity_types, strict=strict
    )


def multilabel_metrics(predictions: np.ndarray, references: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    return load_metric("multilabel").compute(
        predictions=predictions.tolist(), references=references.tolist(), label_names=label_names
    )


def regression_metrics(predictions: np.ndarray, references: np.ndarray) -> dict[str, Any]:
    return load_metric("regression").compute(predictions=predictions.tolist(), references=references.tolist())


def squad_metrics(predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
    return load_metric("squad").compute(predictions=predictions, references=references)
