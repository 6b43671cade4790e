"""Rows of the tasks that tune a policy on answers (`preference`, `kto`), as the prompt's turns and the answers.

Pairs are read by `ftcli.tasks.pairs`, in every layout it knows (prompt/chosen/rejected texts,
whole HH conversations, lists of chat turns, feedback rows' refinement over their output); here
the prompt becomes the turns `task=instruction` writes with its chat or plain template, and what
these tasks cannot train on is refused: an empty prompt or an empty answer. Unpaired rows
(`task=kto`) hold one `completion` and whether it is desirable, in place of the two answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftcli.data.readers import Row
from ftcli.errors import DataError
from ftcli.tasks import pairs
from ftcli.tasks.pairs import PairColumns, holds_pair

Turns = list[dict[str, str]]

__all__ = ["Pair", "PairColumns", "Turns", "holds_pair", "read_completion", "read_pair", "row_prompt", "with_system"]


@dataclass(frozen=True)
class Pair:
    """One preference: the prompt's turns, the preferred answer and the other one."""

    turns: Turns
    chosen: str
    rejected: str


def read_pair(row: Row, columns: PairColumns, system_prompt: str, where: str) -> Pair:
    """The row's prompt turns (with `system_prompt` when the row has no system prompt) and its two answers."""
    read = pairs.read_pair(row, columns, where)
    turns = pairs.prompt_turns(read.prompt, read.system or system_prompt or None)
    _require_prompt(turns, where)
    for side, answer in (("chosen", read.chosen), ("rejected", read.rejected)):
        if not answer.strip():
            raise DataError(f"{where}: the {side} answer is empty", hint="drop the row, or fill in the answer")
    return Pair(turns, read.chosen, read.rejected)


def read_completion(row: Row, columns: PairColumns, completion: str, label: str, system_prompt: str,
                    where: str) -> tuple[Turns, str, bool]:
    """An unpaired row's prompt turns, its completion and whether the completion is desirable."""
    prompt, text, system = pairs.read_answer(row, columns, completion, where)
    turns = pairs.prompt_turns(prompt, system or system_prompt or None)
    _require_prompt(turns, where)
    if not text.strip():
        raise DataError(f"{where}: {completion!r} is empty", hint="drop the row, or fill in the completion")
    value = row.get(label)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise DataError(
            f"{where}: {label!r} is {value!r}, not true or false",
            hint=f"{label!r} says whether the completion is desirable; set task.label_column to the right column",
        )
    return turns, text, value


def row_prompt(row: Row, column: str, where: str) -> Turns:
    """The turns of a row that holds only a prompt (predict): a text, an HH conversation, or a list of turns."""
    value = row.get(column)
    if isinstance(value, list):
        turns = pairs.turns_of(value, column, where)
    elif isinstance(value, str):
        turns = pairs.prompt_turns(value, None)
    else:
        raise DataError(
            f"{where}: {column!r} is {type(value).__name__ if column in row else 'missing'}, not text",
            hint=f"point the setting for {column!r} at a column of prompts",
        )
    _require_prompt(turns, where)
    return turns


def with_system(turns: Turns, system: str) -> Turns:
    return [{"role": "system", "content": system}, *turns] if system and turns[0]["role"] != "system" else turns


def _require_prompt(turns: Turns, where: str) -> None:
    if not any(t["role"] == "user" and t["content"].strip() for t in turns):
        raise DataError(f"{where}: the prompt is empty", hint="every row needs a prompt to answer")
