"""Rows of natural-language feedback: a prompt, a model's first answer, a critique of it, and a refinement.

`task=feedback` reads them for every objective, and `ftcli ilf` writes them. Each objective reads
some of the four fields (`READS`); a row that lacks one, or holds something other than text in it,
is refused with the row named. What makes a row unfit to learn from is screened here too
(`screen`): feedback that says nothing, a refinement that changed nothing, a row an opt-in filter
leaves out. Those rows are counted and named in one warning per split, not trained on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ftcli.data.readers import Row
from ftcli.errors import DataError

log = logging.getLogger(__name__)
SHOWN_RECORDS = 5  # record numbers listed per reason in a warning


class Objective(str, Enum):
    critique = "critique"  # write the feedback for (prompt, output)
    refine = "refine"  # write the refinement for (prompt, output, feedback)
    imitate = "imitate"  # write the refinement for the prompt alone (ILF's policy step)
    hindsight = "hindsight"  # Chain of Hindsight: output, feedback and refinement in one context


FIELDS = ("prompt", "output", "feedback", "refinement")

READS: dict[Objective, tuple[str, ...]] = {
    Objective.critique: ("prompt", "output", "feedback"),
    Objective.refine: ("prompt", "output", "feedback", "refinement"),
    Objective.imitate: ("prompt", "refinement"),
    Objective.hindsight: ("prompt", "output", "feedback", "refinement"),
}
"""The fields each objective reads from a labelled row."""

INPUTS: dict[Objective, tuple[str, ...]] = {
    Objective.critique: ("prompt", "output"),
    Objective.refine: ("prompt", "output", "feedback"),
    Objective.imitate: ("prompt",),
    Objective.hindsight: ("prompt",),
}
"""The fields each objective writes from (a `predict` row needs only these)."""

TARGET: dict[Objective, str] = {
    Objective.critique: "feedback",
    Objective.refine: "refinement",
    Objective.imitate: "refinement",
    Objective.hindsight: "refinement",
}
"""The field each objective learns to write, which evaluation scores the generated text against."""


@dataclass(frozen=True)
class FeedbackColumns:
    """Which column holds each field."""

    prompt: str = "prompt"
    output: str = "output"
    feedback: str = "feedback"
    refinement: str = "refinement"

    def of(self, name: str) -> str:
        return {"prompt": self.prompt, "output": self.output, "feedback": self.feedback,
                "refinement": self.refinement}[name]


def read_fields(row: Row, columns: FeedbackColumns, names: tuple[str, ...], objective: Objective,
                where: str) -> dict[str, str]:
    """The texts of `names` in `row`, by field name; a missing or non-text column is a DataError naming it."""
    fields = {}
    for name in names:
        column = columns.of(name)
        if column not in row:
            raise DataError(
                f"{where}: has no {column!r} column, which task.objective={Objective(objective).value} reads "
                f"(it has: {', '.join(map(repr, row)) or 'none'})",
                hint=f"set task.{name}_column to the column that holds the {name}",
            )
        value = row[column]
        if not isinstance(value, str):
            raise DataError(
                f"{where}: {column!r} is {type(value).__name__}, not text",
                hint=f"point task.{name}_column at a column of strings",
            )
        fields[name] = value
    return fields


def truthy(value: Any, column: str, where: str) -> bool:
    """A filter column's value as a boolean: true/false, 1/0, or their strings ("True", "false")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise DataError(
        f"{where}: {column!r} is {value!r}, which task.filter_column reads as true or false",
        hint="hold booleans (or \"true\"/\"false\") in the filter column, or set task.filter_column=''",
    )


class Screened:
    """The rows one split left out, by reason, for one warning that counts and names them."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = defaultdict(list)

    def leave_out(self, reason: str, index: int) -> None:
        self.rows[reason].append(index)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def report(self, source: str, total: int) -> None:
        """Warn with how many rows of `source` were left out and why; refuse a split left empty."""
        if not self.rows:
            return
        reasons = "; ".join(
            f"{len(rows)} {reason} (record{'s' if len(rows) > 1 else ''} "
            f"{', '.join(map(str, rows[:SHOWN_RECORDS]))}{', ...' if len(rows) > SHOWN_RECORDS else ''})"
            for reason, rows in self.rows.items()
        )
        if len(self) == total:
            raise DataError(
                f"{source}: every one of its {total} rows was left out: {reasons}",
                hint="check the column settings (task.feedback_column, task.refinement_column) and the filters "
                "(task.filter_column, task.min_similarity)",
            )
        log.warning("%s: %d of %d rows left out, not trained or scored on: %s", source, len(self), total, reasons)
