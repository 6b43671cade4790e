"""Scorers: tasks that score a pretrained model as it is, with no training and no run directory.

A scorer is not a `Task`: nothing is fine-tuned, so it has no head to add, no collator and no
features for a training loop. `ftcli eval task=<scorer> model=...` composes
`configs/eval_<scorer>.yaml` (schema `ScoreConfig`, with the scorer's own settings under `task`)
and runs `ftcli.commands.score`, which asks the scorer for everything specific to it. `ftcli
train task=<scorer>` is refused, with the `eval` command line to run instead.

Scorers register here rather than in `TASKS`, so that no command and no schema names one; their
settings still live in `configs/task/`, since `task=<scorer>` is how a person picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ftcli.registry import Entry, Registry

if TYPE_CHECKING:
    import numpy as np
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from ftcli.config.schema import DataConfig, TaskConfig
    from ftcli.data.readers import Row
    from ftcli.models.sources import ModelClass

C = TypeVar("C", bound="TaskConfig", contravariant=True)


@dataclass(frozen=True)
class ScoredRows:
    """One split as a scorer read it."""

    scores: np.ndarray  # (rows, labels): how strongly the model backs each label for each row
    metrics: dict[str, Any] | None  # the split's metrics; None when its rows have no labels


class Scorer(Protocol[C]):
    """What a scorer provides to `ftcli eval task=<scorer>`.

    `C` is the scorer's settings class (registered with it); `task` is always an instance of it.
    """

    def model_class(self, config: PretrainedConfig) -> ModelClass:
        """The `transformers` Auto class to score with, for this model's `transformers` config;
        raises ModelError for a model that cannot be scored this way."""

    def mode(self, task: C) -> str:
        """How these settings score, for the summary and titles: e.g. "zero-shot", "4-shot"."""

    def sample(self, task: C) -> str:
        """The bundled sample dataset scored when no data is given."""

    def needs_training_rows(self, task: C, data: DataConfig) -> bool:
        """Whether the training split must be read (demonstrations, or the label set)."""

    def label_names(self, rows: list[Row] | None, task: C, data: DataConfig) -> list[str]:
        """The ordered label set, from the settings or the training rows (None when not read)."""

    def score_rows(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: list[Row], source: str, task: C,
        data: DataConfig,
        labels: list[str], train: list[Row] | None, seed: int, batch_size: int,
    ) -> ScoredRows:
        """Score one split's `rows` (read from `source`); `train` holds the training rows, if read."""

    def settings(self, task: C) -> dict[str, Any]:
        """What `metrics.json` records of how the model was scored, beside the model's name."""


SCORERS: Registry[Scorer[Any]] = Registry("scorer")


def scorer_of(task: TaskConfig) -> Entry[Scorer[Any]]:
    """The registered scorer whose settings `task` is.

    Found by the settings' schema, which composing `eval task=<scorer>` takes from that scorer's
    registration, so an edited `task.name` does not change what runs.
    """
    from ftcli.errors import ConfigError

    for entry in SCORERS:
        if type(task) is entry.config_cls:
            return entry
    raise ConfigError(
        f"task settings {type(task).__name__} belong to no registered scorer; choose one of: {', '.join(SCORERS.names())}"
    )
