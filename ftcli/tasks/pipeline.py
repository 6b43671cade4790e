"""Features through a model and back, for any bound task: what `train`, `eval` and `predict` share.

Each command encodes its rows with `Task.encode` and reports their notes in its own words; from
the features on, scoring a split and predicting rows go the same way for every task, here.
Inference runs with the numerics the run trained with (`trainer.precision`) and without cuDNN
attention (`ftcli.engine.attention`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ftcli.engine.attention import variable_length_attention

if TYPE_CHECKING:
    from torch import nn
    from transformers.generation.streamers import BaseStreamer

    from ftcli.config.schema import Precision
    from ftcli.tasks.base import Feature, Task

O = TypeVar("O")


def split_scores(
    task: Task[Any], model: nn.Module, features: list[Feature], batch_size: int, precision: Precision
) -> dict[str, Any]:
    """The metrics of one split: its loss first, then the task's scores."""
    return task.scores(outputs_of(task, model, features, batch_size, precision), features)


def row_predictions(
    task: Task[Any], model: nn.Module, features: list[Feature], batch_size: int, precision: Precision,
    streamer: BaseStreamer | None = None,
) -> list[dict[str, Any]]:
    """The prediction fields of each input row, in row order; a generating task writes each text to
    `streamer` too, as it is written."""
    return task.predictions(outputs_of(task, model, features, batch_size, precision, streamer), features)


def outputs_of(
    task: Task[O], model: nn.Module, features: list[Feature], batch_size: int, precision: Precision,
    streamer: BaseStreamer | None = None,
) -> O:
    """What `model` gives for `features` (`Task.outputs`), with the numerics `precision` names.

    In a distributed run each process computes a consecutive share of the features and the shares
    are gathered on every process, in order, so every feature is counted once and each process
    scores the whole split (the main process streams the texts of its own share).
    """
    from ftcli.engine import processes
    from ftcli.engine.precision import autocast_for

    autocast = autocast_for(precision, next(model.parameters()).device)
    if not processes.sharding():
        with variable_length_attention():
            return task.outputs(model, features, batch_size, autocast, streamer)
    with variable_length_attention():
        mine = task.outputs(model, processes.share(features), batch_size, autocast,
                            streamer if processes.is_main() else None)
    return _joined(processes.gather(mine))


def _joined(parts: list[Any]) -> Any:
    """Consecutive shares' outputs as one: lists are concatenated, other outputs join themselves."""
    if isinstance(parts[0], list):
        return [item for part in parts for item in part]
    return type(parts[0]).joined(parts)
