"""Several finished runs read as one (`eval` and `predict` with `run_dir=[a,b,c]`): an ensemble.

The runs must be of one task family and one label set, in any order (each run's classes are put in
the first run's order by name), and their task must predict a distribution over classes
(classification, pair_classification, ner: `ftcli.tasks.class_outputs`); ner runs must also share
a vocabulary, since their probabilities are combined token by token. The first run's settings and
data columns read the rows and its task scores and writes the predictions, from the combined
probabilities (`ftcli.engine.combine`); every other run reads the rows its own way for per-text
tasks (`ftcli.runs.logits`).

An ensemble's loss is the mean negative log-likelihood of the combined probabilities over the
predictions with a target (`ftcli.engine.combine.nll`): for per-text tasks what a single run's loss
is, for ner a mean over its labelled tokens. An ensemble of one run is that run: its outputs, loss
included, come through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ftcli.config.schema import Ensemble as Rule
from ftcli.errors import ConfigError
from ftcli.runs.directory import RunDir, read_config
from ftcli.runs.logits import run_logits
from ftcli.runs.trained import TrainedRun, load_trained, read_labels
from ftcli.tasks.class_outputs import NotClasses, class_head, label_difference, same_family, same_tokens
from ftcli.tasks.pipeline import outputs_of

if TYPE_CHECKING:
    from transformers.generation.streamers import BaseStreamer

    from ftcli.data.readers import Row
    from ftcli.tasks.base import Feature

HINT = "an ensemble combines runs of one task and one label set; list only those in run_dir"


@dataclass
class Ensemble:
    """The runs of an ensemble, loaded, and how their probabilities combine."""

    paths: list[str]
    members: list[TrainedRun]
    rule: Rule
    per_token: bool = False  # the runs' probabilities are per token (ner)

    @property
    def first(self) -> TrainedRun:
        """The run whose settings, task and label order the ensemble reads and writes with."""
        return self.members[0]

    @property
    def name(self) -> str:
        """The run, or "the mean of 3 runs: a, b, c", for titles and summaries."""
        if len(self.paths) == 1:
            return self.paths[0]
        return f"the {self.rule.value} of {len(self.paths)} runs: {', '.join(self.paths)}"

    def record(self) -> dict[str, Any]:
        """Which runs took part and how they were combined (`{"ensemble": ...}`); nothing for one run."""
        if len(self.paths) == 1:
            return {}
        return {"ensemble": {"runs": list(self.paths), "combined_by": self.rule.value}}

    def each(self, change: Callable[[TrainedRun], TrainedRun]) -> Ensemble:
        """The ensemble with `change` applied to every run (`rebound` to other data columns)."""
        return replace(self, members=[change(member) for member in self.members])

    def outputs(self, rows: list[Row], features: list[Feature], source: str, batch_size: int | None,
                streamer: BaseStreamer | None = None) -> Any:
        """What the first run's task scores and predicts from for `features` (its encoding of `rows`):
        one run's own outputs, or the runs' combined probabilities, with the loss of the combination
        when the features carry labels. `batch_size` null: each run's trainer.eval_batch_size."""
        from ftcli.engine.combine import combined_outputs

        first = self.first
        if len(self.members) == 1:
            size = batch_size or first.cfg.trainer.eval_batch_size
            return outputs_of(first.task, first.model, features, size, first.cfg.trainer.precision, streamer)
        logits = [
            run_logits(member, self.per_token or member is first, rows, features, source,
                       batch_size or member.cfg.trainer.eval_batch_size, first.labels)
            for member in self.members
        ]
        targets = [np.asarray(f["labels"]) for f in features] if features and "labels" in features[0] else None
        return combined_outputs(logits, self.rule, targets)


def load_ensemble(paths: list[str], rule: Rule) -> Ensemble:
    """The runs at `paths`, loaded and checked to combine: one task family and label set (from their
    configs and labels, before any weights load), a task with classes, and for ner one vocabulary.

    Raises:
        ConfigError: naming the runs that differ, or why the task's runs cannot be combined.
    """
    if len(paths) > 1:
        _check_alike(paths)
    members = [load_trained(path) for path in paths]
    if len(paths) == 1:
        return Ensemble(paths, members, rule)
    try:
        heads = [class_head(member.task) for member in members]
    except NotClasses as exc:
        raise ConfigError(f"run_dir: task={members[0].cfg.task.name} runs cannot be combined into an ensemble: {exc}",
                          hint="pass one run_dir") from exc
    per_token = heads[0].per_token
    if per_token:
        first = members[0].tokenizer
        differ = [path for path, member in zip(paths[1:], members[1:]) if not same_tokens(member.tokenizer, first)]
        if differ:
            raise ConfigError(
                f"run_dir: task={members[0].cfg.task.name} combines probabilities token by token, and the "
                f"tokenizers of {', '.join(differ)} split text differently from that of {paths[0]} (their "
                "vocabularies differ)",
                hint="combine runs trained from models with one tokenizer",
            )
    return Ensemble(paths, members, rule, per_token)


def _check_alike(paths: list[str]) -> None:
    """Refuse runs of different task families or label sets, naming each run that differs from the first."""
    runs = [RunDir(path) for path in paths]
    for run in runs:
        run.ensure_readable()
    configs, labels = [read_config(run) for run in runs], [read_labels(run) for run in runs]
    problems = []
    for path, cfg, names in zip(paths[1:], configs[1:], labels[1:]):
        if not same_family(cfg.task, configs[0].task):
            problems.append(f"run_dir: {path} is a task={cfg.task.name} run and {paths[0]} a "
                            f"task={configs[0].task.name} run")
            continue
        difference = label_difference(labels[0], names)
        if difference:
            problems.append(f"run_dir: the labels of {path} ({', '.join(names)}) differ from those of {paths[0]} "
                            f"({', '.join(labels[0])}): it {difference}")
    if problems:
        raise ConfigError(problems, hint=HINT)
