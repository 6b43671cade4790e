"""The two shapes of a task, and the registry that maps task names to the first.

A task is registered as a `TaskKind`: what `train` asks before a tokenizer or a label set exists
(the headline metric, the model class and its config settings, the label set itself). Once they
exist, `TaskKind.bind` returns the `Task` the commands run: it holds its config, data columns,
labels and tokenizer, so its calls carry only what changes from one call to the next (rows, a
model, outputs). `train`, `eval` and `predict` drive every task through `Task` alone
(`ftcli.tasks.pipeline`), so a new task, generating or not, needs no change in any command.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    from torch import nn
    from transformers import PretrainedConfig, PreTrainedTokenizerBase
    from transformers.generation.streamers import BaseStreamer

    from ftcli.config.schema import DataConfig, GenerationConfig, TaskConfig
    from ftcli.data.readers import Row
    from ftcli.data.splits import Splits
    from ftcli.engine.step import Collate, TrainingStep
    from ftcli.models.sources import ModelClass

Feature = dict[str, Any]
"""One encoded row, or one window of a row: the model's inputs, plus what the task reads its
outputs back with (gold labels, word alignments, character offsets) and a
`ftcli.tasks.notes.RowNote` saying whether its row was cut or empty. Collators pass on only the
model's inputs."""

Autocast = Callable[[], AbstractContextManager[Any]]
"""A fresh autocast context per forward pass (`ftcli.engine.precision.autocast_for`)."""

C = TypeVar("C", bound="TaskConfig", contravariant=True)
O = TypeVar("O")


class TaskKind(Protocol[C]):
    """A registered task, before binding: what holds for every tokenizer and label set.

    `C` is the task's config class (registered with it); `cfg` is always an instance of it.
    """

    def best_metric(self, cfg: C) -> str:
        """The headline metric: it picks the best checkpoint when trainer.metric_for_best is null."""

    def model_class(self) -> ModelClass:
        """The `transformers` Auto class that builds the model with this task's head."""

    def model_config(self, cfg: C, model_config: PretrainedConfig) -> dict[str, Any]:
        """Model-config settings the head needs beyond its labels (e.g. `problem_type`); `model_config`
        is the model's `transformers` config (`ftcli.models.loading.load_config`), for settings that depend on it."""

    def label_names(self, splits: Splits, cfg: C, data: DataConfig) -> list[str]:
        """The ordered label set (from config or the training data)."""

    def bind(self, cfg: C, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
             frozen: FrozenModels = NO_FROZEN_MODELS) -> Task[Any]:
        """The task the commands run, for these settings, data columns, label set and tokenizer;
        `frozen` runs the reference model of a task that measures its model against one (preference
        losses), and the others ignore it.

        Binding checks nothing and fails on nothing: every error about rows or the tokenizer
        comes from `Task.encode`, where the rows are.
        """


class Task(Protocol[O]):
    """A bound task: rows in, features to train on, and scores or predictions from a model's outputs.

    `O` is what `outputs` returns and `scores` and `predictions` read: logits
    (`ftcli.engine.inference.Outputs`), or generated texts (`ftcli.tasks.generating.Generated`).
    `encode` turns rows into features; everything downstream gets those same features back, so
    a task keeps what it needs to read its outputs in them.
    """

    @property
    def generation(self) -> GenerationConfig | None:
        """The settings the task generates with (`task.generation`); None for a task scored on logits,
        for which `predict` refuses `stream=` and generation settings."""

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """Tokenised features in row order: one per row, or several for a task that splits a row
        (`qa` reads a long context in windows), each saying which row it belongs to. Only `scores`
        and `predictions` map them back to rows, and `predictions` returns exactly one result per row.
        `source` names the rows in errors; without labels (predict) the label columns are not read."""

    def collator(self) -> Collate:
        """Pads a list of features into a batch of model inputs (dynamic padding) for training."""

    def precompute(self, model: nn.Module, features: dict[str, list[Feature]], store: Path, batch_size: int,
                   autocast: Autocast) -> None:
        """Before training, add to each split's features what they need from frozen models, computed
        once (the reference model's log-probabilities) for `model`, the model about to train; what
        `store` already holds for the same features is read back instead (a resumed run). Most
        tasks need nothing."""

    def training_step(self) -> TrainingStep:
        """How the training loop computes the loss of a batch, and what that loss is a mean over."""

    def outputs(
        self, model: nn.Module, features: list[Feature], batch_size: int, autocast: Autocast,
        streamer: BaseStreamer | None = None,
    ) -> O:
        """What `model` gives for `features`, with the mean loss when they carry labels; a generating
        task also writes its texts, each to `streamer` as it is written when one is given."""

    def scores(self, outputs: O, features: list[Feature]) -> dict[str, Any]:
        """The metrics of one split, the loss first."""

    def predictions(self, outputs: O, features: list[Feature]) -> list[dict[str, Any]]:
        """The fields `predict` adds to each input row, one dict per row."""

    def prediction_fields(self) -> tuple[str, ...]:
        """Every field name `predictions` may return, so that `predict` can refuse input rows that
        already hold one before any model runs."""


TASKS: Registry[TaskKind[Any]] = Registry("task")
"""Every trainable task by name. Tasks that score a pretrained model without training
(`prompting`) register in `ftcli.tasks.scorers.SCORERS` instead."""
