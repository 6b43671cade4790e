"""The shape every task implements, and the registry that maps task names to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ftcli.registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from ftcli.config.schema import DataConfig, TaskConfig
    from ftcli.data import Splits
    from ftcli.readers import Row


class Task(Protocol):
    """What a task provides to the commands.

    `encode` turns rows into features; everything downstream (`metrics`, `predictions`) gets
    those same features back, so a task can keep what it needs to read its outputs (gold labels,
    which token starts which word, character offsets) in them, and each feature holds a
    `ftcli.tasks.notes.RowNote` saying whether its row was cut or empty. The collator passes only
    the model's inputs on to the model.
    """

    def best_metric(self, task: TaskConfig) -> str:
        """The headline metric: it picks the best checkpoint when trainer.metric_for_best is null."""

    def model_class(self) -> type:
        """The `transformers` Auto class that builds the model with this task's head."""

    def model_config(self, task: TaskConfig, model: Any) -> dict[str, Any]:
        """Model-config settings the head needs beyond its labels (e.g. `problem_type`); `model` is the
        model's `transformers` config (`ftcli.modeling.load_config`), for settings that depend on it."""

    def label_names(self, splits: Splits, task: TaskConfig, data: DataConfig) -> list[str]:
        """The ordered label set (from config or the training data)."""

    def encode(
        self, rows: list[Row], tokenizer: Any, task: TaskConfig, data: DataConfig, labels: list[str], source: str,
        with_labels: bool = True,
    ) -> list[dict[str, Any]]:
        """Tokenised features in row order: one dict per row, or several for a task that splits a row
        (`qa` reads a long context in windows), each saying which row it belongs to. Commands pass
        the features through whole; only `metrics` and `predictions` map them back to rows, and
        `predictions` returns exactly one result per row."""

    def collator(self, tokenizer: Any, task: TaskConfig) -> Any:
        """Pads a list of features into a batch of model inputs (dynamic padding)."""

    def metrics(
        self, logits: np.ndarray | list[np.ndarray], features: list[dict[str, Any]], task: TaskConfig, labels: list[str]
    ) -> dict[str, Any]:
        """Scores for one split: `logits` from `run_inference` against the labels `encode` put in `features`."""

    def predictions(
        self, logits: np.ndarray | list[np.ndarray], features: list[dict[str, Any]], task: TaskConfig,
        labels: list[str],
    ) -> list[dict[str, Any]]:
        """The fields `predict` adds to each input row."""

    def prediction_fields(self, task: TaskConfig) -> tuple[str, ...]:
        """Every field name `predictions` may return, so that `predict` can refuse input rows that
        already hold one before any model runs."""


TASKS: Registry[Task] = Registry("task")
