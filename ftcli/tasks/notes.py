"""What encoding notices about each row besides its model inputs: text cut at `task.max_length`, or no text.

Tasks put a `RowNote` in each feature (under `NOTE`; their collators leave it out), and the
commands report the notes in one place: `train` and `eval` with one warning per split that counts
the rows, `predict` with a warning and a field on each row it concerns. Rows longer than
`task.max_length` lose their end unseen otherwise, and a row without text still gets a confident
prediction, which means nothing.

Empty text in training or evaluation data is a warning, with the count; a split whose every
row is empty is refused (its text column is almost surely the wrong one). `predict` never
refuses: an empty line is an input like any other, and its output row is marked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ftcli.errors import DataError

if TYPE_CHECKING:
    from torch import nn

NOTE = "row_note"  # the feature key holding a row's `RowNote`; collators leave it out
SHOWN_RECORDS = 10  # empty predict inputs listed by record number in the warning

Use = Literal["train", "eval", "predict"]


@dataclass(frozen=True)
class RowNote:
    """What encoding one row noticed; a row read in several features (`qa` windows) has one note in each."""

    row: int  # the row's index in the encoded list
    cut: bool = False  # the input was longer than task.max_length tokens and lost its end
    empty: bool = False  # the input's text is empty or only whitespace


def is_blank(text: str | Sequence[str]) -> bool:
    """Whether a text (or a list of words) holds nothing but whitespace."""
    if isinstance(text, str):
        return not text.strip()
    return all(not word.strip() for word in text)


def cut_rows(tokenizer: Any, encoded: Any, max_length: int, *texts: list[str], **options: Any) -> list[bool]:
    """Per row of `encoded` (`tokenizer(*texts, truncation=True, max_length=max_length, **options)`),
    whether truncation cut it.

    Fast tokenizers keep what they cut; slow ones are asked again without truncation.
    """
    if getattr(encoded, "encodings", None) is not None:
        return [bool(encoding.overflowing) for encoding in encoded.encodings]
    whole = tokenizer(*texts, truncation=False, **options)["input_ids"]
    return [len(ids) > max_length for ids in whole]


def add_notes(features: list[dict[str, Any]], cut: Sequence[bool], empty: Sequence[bool]) -> list[dict[str, Any]]:
    """`features` (one per row) with each row's `RowNote` added."""
    for row, (feature, was_cut, was_empty) in enumerate(zip(features, cut, empty)):
        feature[NOTE] = RowNote(row, was_cut, was_empty)
    return features


def row_notes(features: list[dict[str, Any]], rows: int) -> list[RowNote]:
    """One note per row, in row order; a row whose features carry none gets an empty note."""
    found = {feature[NOTE].row: feature[NOTE] for feature in features if NOTE in feature}
    return [found.get(row, RowNote(row)) for row in range(rows)]


class WithoutNotes:
    """A collator that passes each feature on without its `RowNote`."""

    def __init__(self, collate: Callable[[list[dict[str, Any]]], Any]) -> None:
        self.collate = collate

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        return self.collate([{k: v for k, v in f.items() if k != NOTE} for f in features])


def token_room(model: nn.Module, virtual_tokens: int) -> int | None:
    """The most input tokens `model` takes: its position table less the virtual tokens a method
    puts before them (None: no position table limits it)."""
    from ftcli.models.loading import position_limit

    limit = position_limit(model)
    return None if limit is None else limit - virtual_tokens


def report(
    features: list[dict[str, Any]], rows: int, where: str, source: str, max_length: int, room: int | None, use: Use,
    length_fixed: bool = False,
) -> list[RowNote]:
    """The notes of one split's (or predict's input's) rows, after warning about cut and empty ones.

    `where` names the rows in warnings (a split, or `input=...`); `source` is where they came from.
    """
    notes = row_notes(features, rows)
    report_cut(notes, where, max_length, room, use, length_fixed)
    report_empty(notes, where, source, use)
    return notes


def report_cut(
    notes: list[RowNote], where: str, max_length: int, room: int | None, use: Use, length_fixed: bool = False
) -> int:
    """Warn, once for `where`, how many rows were cut; the count.

    `room` is the most tokens the model takes (None: no limit). `length_fixed`: the command reads
    with the length the run was trained with (`eval`, `predict`), so the remedy is a new run.
    """
    from ftcli import ui

    cut = sum(note.cut for note in notes)
    if not cut:
        return 0
    what, marked = ("inputs", ' (marked "truncated": true)') if use == "predict" else ("rows", "")
    if room is not None and room <= max_length:
        remedy = "that is all this model takes: shorten or split the texts"
    else:
        remedy = "train with a larger task.max_length" if length_fixed else "raise task.max_length"
        remedy += f" (the model takes up to {room})" if room is not None else ""
    ui.warn(
        f"{where}: {cut} of {len(notes)} {what} longer than task.max_length={max_length} tokens were cut{marked}; "
        f"{remedy}"
    )
    return cut


def report_empty(notes: list[RowNote], where: str, source: str, use: Use) -> list[int]:
    """Warn how many rows have no text; the rows' indices. Training or evaluation data whose every
    row is empty is refused."""
    from ftcli import ui

    empty = [note.row for note in notes if note.empty]
    if not empty:
        return empty
    if use != "predict" and len(empty) == len(notes):
        raise DataError(
            f"{where} ({source}): all {len(notes)} rows have empty text",
            hint="check that data.text_column (or the task's column settings) names the column that holds the text",
        )
    if use == "predict":
        shown = ", ".join(map(str, empty[:SHOWN_RECORDS])) + (", …" if len(empty) > SHOWN_RECORDS else "")
        ui.warn(
            f"{where}: {len(empty)} of {len(notes)} inputs are empty (records {shown}): their predictions mean "
            'nothing (marked "empty": true)'
        )
    else:
        effect = "the model is trained on them with no text to read" if use == "train" else "they are scored on no text"
        ui.warn(f"{where}: {len(empty)} of {len(notes)} rows have empty text: {effect}; fix or drop them")
    return empty
