"""Weighted mixtures of training sources (`data.mix`): several files or hub datasets, one training split.

Rows are drawn by `datasets.interleave_datasets` with the normalised weights as probabilities,
seeded by the run's seed, and `data.mix_stopping` as its stopping strategy (what each means for
how many rows train: `ftcli.config.schema.MixSource`). The library draws over row indices only,
so every row reaches the task exactly as its reader returned it (no Arrow round trip that would
reshape nested or mixed-type columns).

Columns must agree: every source must hold the columns of the first one, `data.mix[0]` (after
the usual column mapping, `data.text_column` and the rest, which applies to all sources alike);
a source that lacks one is refused with the columns it has, and columns only some sources have
are dropped. What was drawn is a `MixRecord`, written to the run directory as `data_mix.json`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ftcli.config.schema import MixSource, MixStopping
from ftcli.data.readers import Row, read_rows
from ftcli.errors import DataError, first_line


@dataclass
class MixRecord:
    """Each source of a mixture with its weight, the rows it has and the rows drawn from it."""

    stopping: MixStopping
    streaming: bool
    sources: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """`data_mix.json`: `rows_available` is null for a streamed source (its length is not known)."""
        return {"stopping": self.stopping.value, "streaming": self.streaming, "sources": self.sources}

    def line(self) -> str:
        """One line: `training mixture (first_exhausted): a.jsonl 70% 700/1000 rows, b.jsonl 30% 300/300 rows`."""
        parts = []
        for source in self.sources:
            available = "" if source["rows_available"] is None else f"/{source['rows_available']}"
            verb = " read" if self.streaming else ""
            parts.append(f"{source['source']} {source['weight']:.0%} {source['rows_drawn']}{available} rows{verb}")
        return f"training mixture ({self.stopping.value}): " + ", ".join(parts)


def normalised(weights: list[float]) -> list[float]:
    """The weights as probabilities (summing to 1)."""
    total = sum(weights)
    return [w / total for w in weights]


def mixed_rows(mix: list[MixSource], stopping: MixStopping, seed: int) -> tuple[list[Row], MixRecord]:
    """The mixture's rows, drawn in memory, and the record of what came from where."""
    from datasets import Dataset, interleave_datasets

    loaded = [read_source(source, f"data.mix[{i}]") for i, source in enumerate(mix)]
    loaded = agreeing_columns(loaded, mix)
    probabilities = normalised([source.weight for source in mix])
    parts = [Dataset.from_dict({"source": [i] * len(rows), "row": list(range(len(rows)))})
             for i, rows in enumerate(loaded)]
    drawn = interleave_datasets(parts, probabilities=probabilities, seed=seed, stopping_strategy=stopping.value)
    picks = list(zip(drawn["source"], drawn["row"]))
    counts = Counter(source for source, _ in picks)
    record = MixRecord(stopping, False, [
        {"source": source.name(), "weight": probability, "rows_available": len(rows), "rows_drawn": counts[i]}
        for i, (source, probability, rows) in enumerate(zip(mix, probabilities, loaded))
    ])
    return [loaded[source][row] for source, row in picks], record


def read_source(source: MixSource, place: str) -> list[Row]:
    """All rows of one source: a local file through ftcli's readers, or a hub dataset's split."""
    if source.file:
        rows = read_rows(source.file, f"{place}.file")
    else:
        rows = _hub_rows(source, place)
    if not rows:
        raise DataError(f"{place} ({source.name()}) has no rows", hint="give each source of data.mix at least one row")
    return rows


def _hub_rows(source: MixSource, place: str) -> list[Row]:
    import datasets

    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(source.dataset, source.dataset_config, split=source.split).to_list()
    except Exception as exc:  # datasets raises many types for a missing or unreachable dataset or split
        raise DataError(
            f"{place}.dataset={source.dataset!r} (split {source.split!r}) could not be loaded: {first_line(exc)}",
            hint="check the id, dataset_config and split; offline, use a local file: {file: PATH, weight: W}",
        ) from exc


def agreeing_columns(loaded: list[list[Row]], mix: list[MixSource]) -> list[list[Row]]:
    """Every source's rows cut to the first source's columns; a source without one of them is refused."""
    needed = list(loaded[0][0])
    for i, rows in enumerate(loaded):
        check_columns(rows[0], needed, mix[i], i, mix[0])
    if all(list(rows[0]) == needed for rows in loaded):
        return loaded
    return [[{column: row[column] for column in needed} for row in rows] for rows in loaded]


def check_columns(row: Row, needed: list[str], source: MixSource, index: int, first: MixSource) -> None:
    """Refuse a source whose (first) row lacks a column the first source has, naming what it has."""
    missing = [column for column in needed if column not in row]
    if missing:
        raise DataError(
            f"data.mix[{index}] ({source.name()}) has no column {', '.join(map(repr, missing))}, which "
            f"data.mix[0] ({first.name()}) has; its columns: {', '.join(map(str, row))}",
            hint="give every source of data.mix the same column names (rename them in the files, or "
            "drop the column from data.mix[0])",
        )
