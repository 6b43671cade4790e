"""Training batches made from a stream of rows as it is read (`data.streaming=true`).

A streaming run hands the loop a `FeatureStream` instead of a list of features: the rows come
from any `Rows` (`ftcli.data.streaming.RowStream`), and each batch of `trainer.batch_size` rows
is encoded by the task and collated only when the loop asks for it, so no more than one batch
of features exists at a time. `StreamBatches` is what the loop iterates; it has the sampler's
`skip` and `set_epoch`, so the loop's resume logic applies unchanged: a resumed run skips the
batches it trained on, and the stream is asked for the rows from that position on
(`Rows.rows(skip=...)`), which are the rows an uninterrupted run would have read next.

The stream never ends an epoch (`len` is as large as a length can be); the run's length is
`trainer.max_steps`. Rows are not length-grouped: that would need each row's length before its
batch is cut, so every row would be tokenised twice.

Under `accelerate launch` every process reads the whole stream and keeps global batch `i` when
`i % num_processes == process_index`: simple and deterministic, each process's batches are the
same in a resumed run, and the processes step together since each keeps every `num_processes`-th
batch of an endless stream.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ftcli.data.readers import Row
from ftcli.engine.step import Batch

Feature = dict[str, Any]


class Rows(Protocol):
    """An endless, seeded sequence of rows that can start at any position."""

    def rows(self, skip: int = 0) -> Iterator[Row]:
        """The rows from position `skip` on; the same rows for the same position, every time."""


@dataclass
class FeatureStream:
    """Training features made on demand: `encode(rows, source)` turns one batch of rows into features."""

    stream: Rows
    encode: Callable[[list[Row], str], list[Feature]]
    source: str  # names the stream in the task's error messages


class StreamBatches:
    """Collated batches of a `FeatureStream` for one process, on its device; see the module's docstring."""

    def __init__(self, features: FeatureStream, batch_size: int, collate: Callable[[list[Feature]], Batch],
                 device: Any, num_processes: int = 1, process_index: int = 0) -> None:
        self.features, self.batch_size, self.collate, self.device = features, batch_size, collate, device
        self.num_processes, self.process_index = num_processes, process_index
        self.skip = 0  # the batches of all processes trained on before a resume (the loop sets it)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # a stream has no epochs; its passes are its own (`RowStream`)

    def __len__(self) -> int:
        return sys.maxsize

    def rows_consumed(self, batches: int) -> int:
        """Rows of the stream read into batches once this process has taken `batches` of them (all processes')."""
        return batches * self.num_processes * self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        from accelerate.utils import send_to_device

        rows = self.features.stream.rows(skip=self.skip * self.batch_size)
        for index in itertools.count(self.skip):
            chunk = list(itertools.islice(rows, self.batch_size))
            if index % self.num_processes != self.process_index:
                continue
            first = index * self.batch_size
            features = self.features.encode(chunk, f"{self.features.source} rows {first}-{first + len(chunk) - 1}")
            yield send_to_device(self.collate(features), self.device)
