"""Preference rows as a prompt conversation and the answers to it.

Three layouts are read (`task.format=auto` tells them apart per row):

- strings: `prompt`, `chosen`, `rejected`, and an optional `system`;
- whole conversations in one string per side, where chosen and rejected share the prompt turns
  (Anthropic's HH layout, "\\n\\nHuman: … \\n\\nAssistant: …"): the shared turns up to the last
  "\\n\\nAssistant:" are the prompt, what follows it on each side is the answer;
- chat `messages` lists per side: the turns both share are the prompt, each side's last
  assistant turn its answer.

Unpaired rows (`task=kto`) hold one `completion` and whether it is desirable, in place of the two
answers. The prompt becomes a list of turns, so it is written with the chat template or the
plain template exactly as `task=instruction` writes its prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ftcli.data.readers import Row
from ftcli.errors import DataError
from ftcli.tasks.chat import ROLES

Turns = list[dict[str, str]]
HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


class PairFormat(str, Enum):
    auto = "auto"  # messages lists, else HH conversations (no prompt column), else strings, per row
    strings = "strings"
    conversation = "conversation"
    messages = "messages"


@dataclass(frozen=True)
class PairColumns:
    prompt: str
    chosen: str
    rejected: str
    system: str


@dataclass(frozen=True)
class Pair:
    """One preference: the prompt's turns, the preferred answer and the other one."""

    turns: Turns
    chosen: str
    rejected: str


def read_pair(row: Row, fmt: PairFormat, columns: PairColumns, system_prompt: str, where: str) -> Pair:
    """The row's prompt turns and its two answers, checked: both answers present, text, and different."""
    for column in (columns.chosen, columns.rejected):
        if column not in row or row[column] is None:
            raise DataError(
                f"{where}: has no {column!r} (it has: {', '.join(map(repr, row)) or 'none'})",
                hint=f"every row needs {columns.chosen!r} and {columns.rejected!r}; "
                "set task.chosen_column / task.rejected_column to the right columns",
            )
    found = fmt if fmt is not PairFormat.auto else _detect(row, columns)
    if found is PairFormat.messages:
        turns, chosen, rejected = _from_messages(row, columns, where)
    elif found is PairFormat.conversation:
        prompt, chosen, rejected = split_shared_prompt(_text(row, columns.chosen, where),
                                                       _text(row, columns.rejected, where), where)
        turns = hh_turns(prompt, where)
    else:
        turns = prompt_turns(prompt_text(row, columns.prompt, where), where)
        chosen, rejected = _text(row, columns.chosen, where), _text(row, columns.rejected, where)
    system = row.get(columns.system) if isinstance(row.get(columns.system), str) else None
    turns = with_system(turns, system or system_prompt)
    if not chosen.strip() or not rejected.strip():
        raise DataError(f"{where}: the {'chosen' if not chosen.strip() else 'rejected'} answer is empty",
                        hint="drop the row, or fill in the answer")
    if chosen.strip() == rejected.strip():
        raise DataError(f"{where}: the chosen and rejected answers are the same text, so nothing is preferred",
                        hint="drop the row, or fix one of its answers")
    return Pair(turns, chosen, rejected)


def read_completion(row: Row, columns: PairColumns, completion: str, label: str, system_prompt: str,
                    where: str) -> tuple[Turns, str, bool]:
    """An unpaired row's prompt turns, its completion and whether the completion is desirable."""
    turns = prompt_turns(prompt_text(row, columns.prompt, where), where)
    system = row.get(columns.system) if isinstance(row.get(columns.system), str) else None
    text = _text(row, completion, where)
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
    return with_system(turns, system or system_prompt), text, value


def split_shared_prompt(chosen: str, rejected: str, where: str) -> tuple[str, str, str]:
    """The prompt two whole HH conversations share, and the answer each gives after it.

    The prompt runs to the end of the last "\\n\\nAssistant:" both sides share, so an answer
    never starts inside a turn.
    """
    shared = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        shared += 1
    end = chosen.rfind(ASSISTANT, 0, shared)
    if end < 0:
        raise DataError(
            f"{where}: chosen and rejected do not share a prompt ending in {ASSISTANT.strip()!r}",
            hint="give the prompt in its own column (task.format=strings), or whole conversations with the same turns",
        )
    cut = end + len(ASSISTANT)
    return chosen[:cut], chosen[cut:].strip(), rejected[cut:].strip()


def prompt_turns(prompt: str, where: str) -> Turns:
    """A prompt string's turns: an HH conversation's turns ("Human: … Assistant:"), else one user turn."""
    if prompt.lstrip().startswith(HUMAN.strip()) and ASSISTANT in prompt:
        return hh_turns(prompt, where)
    return [{"role": "user", "content": prompt}]


def hh_turns(prompt: str, where: str) -> Turns:
    """The turns of an HH prompt ("\\n\\nHuman: … \\n\\nAssistant: …"), without the last, empty
    assistant opening the answer follows."""
    import re

    text = prompt if prompt.startswith("\n\n") else "\n\n" + prompt.lstrip()
    parts = re.split(r"\n\n(Human|Assistant):", text)
    turns: Turns = []
    for speaker, text in zip(parts[1::2], parts[2::2]):
        turns.append({"role": "user" if speaker == "Human" else "assistant", "content": text.strip()})
    if turns and turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns.pop()
    if not turns or not any(t["role"] == "user" and t["content"] for t in turns):
        raise DataError(f"{where}: the conversation's prompt has no Human turn", hint="check the row's text")
    return turns


def with_system(turns: Turns, system: str) -> Turns:
    return [{"role": "system", "content": system}, *turns] if system and turns[0]["role"] != "system" else turns


def _detect(row: Row, columns: PairColumns) -> PairFormat:
    if isinstance(row.get(columns.chosen), list):
        return PairFormat.messages
    if columns.prompt not in row and isinstance(row.get(columns.chosen), str) and ASSISTANT in row[columns.chosen]:
        return PairFormat.conversation
    return PairFormat.strings


def _from_messages(row: Row, columns: PairColumns, where: str) -> tuple[Turns, str, str]:
    chosen, rejected = (_turns(row, c, where) for c in (columns.chosen, columns.rejected))
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    prompt = chosen[:shared]
    if isinstance(row.get(columns.prompt), list):  # the prompt in its own column, the answers alone
        prompt = _turns(row, columns.prompt, where) + prompt
    for side, turns in (("chosen", chosen), ("rejected", rejected)):
        if turns[-1]["role"] != "assistant" or len(turns) != shared + 1:
            raise DataError(f"{where}: {side} must be the shared prompt turns and then one assistant turn",
                            hint="end each side's messages with the answer, after the same prompt turns")
    if not prompt or not any(t["role"] == "user" and t["content"].strip() for t in prompt):
        raise DataError(f"{where}: the prompt is empty", hint="every pair needs a user turn before its answers")
    return prompt, chosen[-1]["content"], rejected[-1]["content"]


def _turns(row: Row, column: str, where: str) -> Turns:
    value: Any = row.get(column)
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: {column!r} must be a non-empty list of {{'role', 'content'}} turns")
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise DataError(f"{where}: {column}[{i}] is {turn!r}",
                            hint=f"each turn needs a role ({', '.join(ROLES)}) and a text content")
    return [{"role": t["role"], "content": t["content"]} for t in value]


def prompt_text(row: Row, column: str, where: str) -> str:
    text = _text(row, column, where)
    if not text.strip():
        raise DataError(f"{where}: the prompt ({column!r}) is empty", hint="every row needs a prompt to answer")
    return text


def _text(row: Row, column: str, where: str) -> str:
    value = row.get(column)
    if not isinstance(value, str):
        raise DataError(
            f"{where}: {column!r} is {type(value).__name__ if column in row else 'missing'}, not text",
            hint=f"point the setting for {column!r} at a column of strings",
        )
    return value
