"""Training rows read as they come (`data.streaming=true`), for training sets larger than memory.

A `RowStream` reads local `.jsonl` or `.parquet` files line by line (or batch by batch), or a hub
dataset through `datasets.load_dataset(..., streaming=True)`, one source or a weighted mixture
of them (`data.mix`), and shuffles them through a seeded buffer of `data.shuffle_buffer` rows.
Nothing holds more than that buffer (and one parquet record batch): the stream is never
materialised.

The stream is endless: when the sources are used up (`data.mix_stopping` decides when a
mixture is, as `datasets.interleave_datasets` does: `ftcli.config.schema.MixSource`) it starts
over with a new pass, whose mixing and shuffling are seeded by the run's seed and the pass
number. Every row it yields is a pure function of the seed and its position, so a resumed run
asks for the stream from position `n` (`rows(skip=n)`) and gets exactly the rows an
uninterrupted run saw from there: the rows before `n` are read again and dropped, neither
encoded nor kept (reading costs time in proportion to `n`; memory stays flat).

The hub part cannot be tested offline; the local readers and everything after them are.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ftcli.config.schema import MixSource, MixStopping
from ftcli.data.mixture import MixRecord, check_columns, normalised
from ftcli.data.readers import Row
from ftcli.errors import DataError, first_line

STREAMED_SUFFIXES = (".jsonl", ".parquet")
PARQUET_BATCH = 1024  # rows per parquet record batch read at a time


@dataclass
class StreamSource:
    """One source of a stream: its name, its weight in a mixture, and how to read it from the start."""

    name: str
    weight: float
    open: Callable[[], Iterator[Row]]
    read: int = 0  # rows read from it so far (passes and replays included)


@dataclass
class RowStream:
    """The training rows of a streaming run, in a seeded order; see the module's docstring."""

    sources: list[StreamSource]
    stopping: MixStopping
    seed: int
    buffer: int
    columns: list[str] | None = None  # a mixture's rows are cut to these (the first source's)
    description: str = field(default="")

    @property
    def read(self) -> int:
        """Rows read from the sources so far, over every pass (for checks that reading stays bounded)."""
        return sum(source.read for source in self.sources)

    def rows(self, skip: int = 0) -> Iterator[Row]:
        """Every row of the stream from position `skip` on, pass after pass, without end."""
        return itertools.islice(self._passes(), skip, None)

    def record(self) -> MixRecord:
        """What was read from each source, for `data_mix.json` (a stream's length is not known)."""
        probabilities = normalised([source.weight for source in self.sources])
        return MixRecord(self.stopping, True, [
            {"source": source.name, "weight": probability, "rows_available": None, "rows_drawn": source.read}
            for source, probability in zip(self.sources, probabilities)
        ])

    def _passes(self) -> Iterator[Row]:
        for number in itertools.count():
            empty = True
            mixing = random.Random(f"{self.seed}:{number}:mix")
            shuffling = random.Random(f"{self.seed}:{number}:shuffle")
            for row in shuffled(self._mixed(mixing), self.buffer, shuffling):
                empty = False
                yield row
            if empty:
                raise DataError(f"the training stream ({self.description}) has no rows",
                                hint="give a training file with at least one row")

    def _mixed(self, rng: random.Random) -> Iterator[Row]:
        """One pass over the sources; a mixture picks each row's source by weight, as
        `datasets.interleave_datasets` does, and stops as `self.stopping` says."""
        if len(self.sources) == 1:
            yield from self._counted(self.sources[0])
            return
        iterators = [self._counted(source) for source in self.sources]
        exhausted = [False] * len(self.sources)
        indices, weights = range(len(self.sources)), normalised([source.weight for source in self.sources])
        while True:
            i = rng.choices(indices, weights)[0]
            row = next(iterators[i], None)
            if row is None:
                exhausted[i] = True
                if self.stopping is MixStopping.first_exhausted or all(exhausted):
                    return
                iterators[i] = self._counted(self.sources[i])  # all_exhausted: the source starts over
                row = next(iterators[i], None)
                if row is None:
                    return
            yield row if self.columns is None else {c: row[c] for c in self.columns if c in row}

    def _counted(self, source: StreamSource) -> Iterator[Row]:
        for row in source.open():
            source.read += 1
            yield row


def shuffled(rows: Iterable[Row], size: int, rng: random.Random) -> Iterator[Row]:
    """`rows` in a seeded order, holding at most `size` of them: once the buffer is full, each new
    row takes the place of one drawn at random, which is yielded; the rest come out shuffled at the end."""
    buffer: list[Row] = []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        i = rng.randrange(size)
        yield buffer[i]
        buffer[i] = row
    rng.shuffle(buffer)
    yield from buffer


def stream_of(mix: list[MixSource], stopping: MixStopping, seed: int, buffer: int) -> RowStream:
    """The stream of `mix` (one source for plain data.train_file or data.dataset), its columns checked:
    the first row of every source is read once here, so a bad path or column fails before any model loads."""
    places = ["data.mix[%d]" % i for i in range(len(mix))] if len(mix) > 1 else [_single_place(mix[0])]
    sources = [StreamSource(source.name(), source.weight, _opener(source, place)) for source, place in zip(mix, places)]
    firsts = [next(source.open(), None) for source in sources]
    for source, first, place in zip(sources, firsts, places):
        if first is None:
            raise DataError(f"{place} ({source.name}) has no rows", hint="give a training file with at least one row")
    columns = None
    if len(mix) > 1:
        columns = list(firsts[0] or {})
        for i, first in enumerate(firsts):
            check_columns(first or {}, columns, mix[i], i, mix[0])
    description = ", ".join(source.name for source in sources)
    return RowStream(sources, stopping, seed, buffer, columns, description)


def _single_place(source: MixSource) -> str:
    return "data.train_file" if source.file else "data.dataset"


def _opener(source: MixSource, place: str) -> Callable[[], Iterator[Row]]:
    if source.file:
        path = Path(source.file).expanduser()
        what = f"{place}.file" if place.startswith("data.mix") else place
        if not path.is_file():
            raise DataError(f"{what}={source.file}: no such file",
                            hint=f"check the path (relative paths start at {Path.cwd()})")
        suffix = path.suffix.lower()
        if suffix not in STREAMED_SUFFIXES:
            raise DataError(
                f"{what}={source.file}: data.streaming=true reads .jsonl and .parquet files, not {suffix!r}",
                hint="convert the file to .jsonl (one JSON object per line), or set data.streaming=false",
            )
        if suffix == ".parquet":
            return lambda: _parquet_rows(path, what)
        return lambda: _jsonl_rows(path, what)
    return lambda: _hub_rows(source, place)


def _jsonl_rows(path: Path, what: str) -> Iterator[Row]:
    """The objects of a jsonl file, one line at a time (only `\\n` ends a line, as `read_rows` reads it)."""
    with path.open(encoding="utf-8-sig", newline="\n") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{what}={path}: line {number} is not valid JSON ({first_line(exc)})",
                                hint="each line of a .jsonl file must be one JSON object") from exc
            if not isinstance(row, dict):
                raise DataError(f"{what}={path}: line {number} is a JSON {type(row).__name__}, not an object",
                                hint='each line must look like {"text": "...", "label": "..."}')
            yield row


def _parquet_rows(path: Path, what: str) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{what}={path}: not a readable parquet file ({first_line(exc)})") from exc
    for batch in file.iter_batches(batch_size=PARQUET_BATCH):
        yield from batch.to_pylist()


def _hub_rows(source: MixSource, place: str) -> Iterator[Row]:
    """A hub dataset's split, streamed by `datasets` (needs the network; not tested offline)."""
    import datasets

    try:
        dataset = datasets.load_dataset(source.dataset, source.dataset_config, split=source.split, streaming=True)
    except Exception as exc:  # datasets raises many types for a missing or unreachable dataset or split
        raise DataError(
            f"{place}={source.dataset!r} (split {source.split!r}) could not be streamed: {first_line(exc)}",
            hint="check the id, config and split, and the network; or stream a local .jsonl/.parquet file",
        ) from exc
    yield from dataset
