"""What a run trains on when it is not one in-memory list of rows: a weighted mixture of sources
(`data.mix`, recorded as `data_mix.json`) or a stream (`data.streaming=true`), and the lines
that say so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftcli import ui
from ftcli.config.schema import DataConfig
from ftcli.data.splits import Splits
from ftcli.engine.streams import FeatureStream
from ftcli.runs.directory import DATA_MIX, RunDir

if TYPE_CHECKING:
    from ftcli.tasks.base import Feature, Task


def training_features(splits: Splits, features: dict[str, list[Feature]],
                      task: Task[Any]) -> list[Feature] | FeatureStream:
    """The encoded training split, or with a stream the features the loop encodes batch by batch."""
    if splits.stream is None:
        return features["train"]
    return FeatureStream(splits.stream, task.encode, splits.sources["train"])


def say_training_data(run_dir: RunDir, splits: Splits, data: DataConfig, seed: int) -> None:
    """One line on a mixture (its record written to `data_mix.json`) or a stream."""
    if splits.mix is not None:
        if _main_process():
            run_dir.write_json(DATA_MIX, splits.mix.to_json())
        ui.info(splits.mix.line())
    if splits.stream is not None:
        ui.info(f"train: streamed from {splits.stream.description} (shuffle buffer {data.shuffle_buffer} rows, "
                f"seed {seed}); epochs do not apply: the run is trainer.max_steps long")
        if data.label_names is None and "validation" in splits:
            ui.info("labels: taken from the validation split, since the stream is not read ahead "
                    "(set data.label_names to fix the set and order)")


def record_stream(run_dir: RunDir, splits: Splits) -> None:
    """A streamed mixture's `data_mix.json`, once training has read what it read."""
    if splits.stream is not None and len(splits.stream.sources) > 1:
        record = splits.stream.record()
        if _main_process():
            run_dir.write_json(DATA_MIX, record.to_json())
        ui.info(record.line())


def _main_process() -> bool:
    """Under `accelerate launch` only the main process writes the run directory."""
    from accelerate import PartialState

    return PartialState().is_main_process
