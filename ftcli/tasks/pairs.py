"""Preference pairs from rows: a prompt with a chosen and a rejected answer, for the tasks that learn from them.

Four row layouts are read:

- separate columns: `prompt`, `chosen` and `rejected` texts, and an optional `system`;
- whole conversations in Anthropic's HH layout, where `chosen` and `rejected` each hold the full
  text ``"\\n\\nHuman: … \\n\\nAssistant: …"`` and share every turn before their last answer: the
  prompt is their longest common prefix up to its last ``"\\n\\nAssistant:"``, and each answer is
  what follows it (`split_shared_prompt`);
- chat `messages`-style lists of `{"role", "content"}` turns in `chosen` and `rejected`: the prompt
  is the turns they share before their last one, which must be the assistant's and is the answer.
  A `prompt` column may hold the leading turns instead (TRL's conversational layout, whose
  `chosen` and `rejected` are one assistant turn each);
- rows of natural-language feedback (`ftcli.tasks.feedback_rows`), told apart by having no
  `chosen` column but a `refinement` or an `output` one: the refinement, which follows the
  feedback, is chosen over the first `output`, so the preference tasks learn from the same rows
  as `task=feedback`. Both answers are texts, and the prompt is in its own column.

Answers that repeat a prompt given in its own column (whole conversations beside their prompt)
lose that copy of it.

A prompt is kept as it was given, a text or a list of turns; `prompt_turns` writes it as turns
for a chat template, `prompt_text` as one text for an encoder. A single answer to score (`predict`
of a reward model) is read the same way by `read_answer`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, Union

from ftcli.data.readers import Row
from ftcli.errors import DataError
from ftcli.tasks.chat import checked_turns

Turn = dict[str, str]
Prompt = Union[str, list[Turn]]

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
SPEAKER = re.compile(r"(?:^|\n\n)(Human|Assistant):")
SPEAKER_ROLES = {"Human": "user", "Assistant": "assistant"}
ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}  # turns written as one text


@dataclass(frozen=True)
class PairColumns:
    """Which columns hold the prompt, the two answers and the system prompt, and the two answers
    of a feedback row."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    system: str = "system"
    output: str = "output"  # a feedback row's first answer: rejected
    refinement: str = "refinement"  # the answer that follows the feedback: chosen


class Pair(NamedTuple):
    prompt: Prompt  # a text (an HH prompt keeps its markers) or the leading turns
    chosen: str
    rejected: str
    system: str | None  # the row's system prompt, if it has one


def read_pair(row: Row, columns: PairColumns, where: str) -> Pair:
    """The prompt, the two answers and the system prompt of one row, in any of the layouts above.

    `where` names the row in errors ("train.jsonl: record 3"). A row without either answer,
    with the same answer twice, with answers of different layouts, or with conversations that
    differ before their last turn is a DataError; an empty prompt is left to the task to judge.
    """
    if is_feedback(row, columns):
        return _feedback_pair(row, columns, where)
    chosen = _answer_value(row, columns.chosen, where, "task.chosen_column")
    rejected = _answer_value(row, columns.rejected, where, "task.rejected_column")
    system = _system(row, columns.system, where)
    given = _prompt_value(row, columns.prompt, where)
    if isinstance(chosen, str) != isinstance(rejected, str):
        raise DataError(
            f"{where}: {columns.chosen!r} is {_kind(chosen)} but {columns.rejected!r} is {_kind(rejected)}",
            hint="write both answers the same way: two texts, or two lists of turns",
        )
    if isinstance(chosen, str) and isinstance(rejected, str):
        return Pair(*_text_answers(chosen, rejected, given, columns, where), system)
    chosen_leading, chosen_answer = _last_answer(turns_of(chosen, columns.chosen, where), columns.chosen, where)
    rejected_turns = turns_of(rejected, columns.rejected, where)
    rejected_leading, rejected_answer = _last_answer(rejected_turns, columns.rejected, where)
    if chosen_leading != rejected_leading:
        raise DataError(
            f"{where}: {columns.chosen!r} and {columns.rejected!r} differ before their last turn, so they do not "
            "answer the same prompt",
            hint="keep the turns before the answers the same in both conversations",
        )
    _require_different(chosen_answer, rejected_answer, columns, where)
    return Pair(_before(given, chosen_leading), chosen_answer, rejected_answer, system)


def is_feedback(row: Row, columns: PairColumns) -> bool:
    """Whether a row is in the feedback layout: no chosen column, but a refinement or an output."""
    return columns.chosen not in row and (columns.refinement in row or columns.output in row)


def holds_pair(row: Row, columns: PairColumns) -> bool:
    """Whether a row holds two answers to compare (`predict` scores them): a chosen one, or a
    feedback row's refinement."""
    return row.get(columns.chosen) is not None or (
        columns.chosen not in row and row.get(columns.refinement) is not None)


def read_answer(row: Row, columns: PairColumns, answer_column: str, where: str) -> tuple[Prompt, str, str | None]:
    """The prompt, the answer in `answer_column` and the system prompt of a row with one answer.

    Without a prompt column the answer column may hold the whole conversation: an HH text, cut at
    its last ``"\\n\\nAssistant:"``, or a list of turns whose last is the assistant's answer.
    """
    value = row.get(answer_column)
    if value is None:
        raise DataError(
            f"{where}: has no {answer_column!r} (it has: {', '.join(map(repr, row)) or 'none'})",
            hint="set task.response_column to the column of answers to score, or give "
            "task.chosen_column and task.rejected_column to score a pair",
        )
    system = _system(row, columns.system, where)
    given = _prompt_value(row, columns.prompt, where)
    if isinstance(value, list):
        leading, answer = _last_answer(turns_of(value, answer_column, where), answer_column, where)
        return _before(given, leading), answer, system
    if not isinstance(value, str):
        raise DataError(f"{where}: {answer_column!r} is {_kind(value)}, not text or a list of turns")
    if given is not None:
        return given, value, system
    cut = value.rfind(ASSISTANT)
    if cut < 0:
        raise DataError(
            f"{where}: has no {columns.prompt!r} column, and {answer_column!r} is not a Human/Assistant conversation",
            hint="give the prompt in its own column (task.prompt_column)",
        )
    end = cut + len(ASSISTANT)
    return value[:end], value[end:].strip(), system


def split_shared_prompt(chosen: str, rejected: str, where: str) -> tuple[str, str, str]:
    """The shared prompt and the two answers of a pair of whole HH conversations.

    The prompt is the longest common prefix of the two texts, up to and including its last
    ``"\\n\\nAssistant:"``; each answer is the rest of its text, without surrounding whitespace.
    Cutting at the marker rather than at the end of the common prefix keeps answers that happen
    to start alike ("Yes, …" and "Yes, but …") whole.
    """
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        raise DataError(
            f"{where}: no prompt column, and the chosen and rejected texts share no prompt ending in "
            f"{ASSISTANT.strip()!r} (Anthropic's HH layout)",
            hint="give the prompt in its own column (task.prompt_column), or write both answers as whole "
            '"\\n\\nHuman: … \\n\\nAssistant: …" conversations with the same turns before the answer',
        )
    end = cut + len(ASSISTANT)
    return chosen[:end], chosen[end:].strip(), rejected[end:].strip()


def prompt_turns(prompt: Prompt, system: str | None) -> list[Turn]:
    """The prompt as chat turns, after a system turn when `system` is given and the turns have none.

    An HH text becomes its Human and Assistant turns (the open "Assistant:" at its end, which the
    answer follows, is dropped); any other text is one user turn.
    """
    turns = list(prompt) if isinstance(prompt, list) else _hh_turns(prompt) if is_hh(prompt) else [
        {"role": "user", "content": prompt}]
    if system and (not turns or turns[0]["role"] != "system"):
        turns.insert(0, {"role": "system", "content": system})
    return turns


def prompt_text(prompt: Prompt, system: str | None) -> str:
    """The prompt as one text, for a model that reads it beside the answer as a text pair.

    A text stays as it is (an HH one keeps its "Human:" and "Assistant:" markers); turns are
    written one paragraph each, as "Role: content", unless there is only a user's turn. A system
    prompt comes first, as a paragraph of its own.
    """
    if isinstance(prompt, str):
        text = prompt.strip()
    elif len(prompt) == 1 and prompt[0]["role"] == "user":
        text = prompt[0]["content"]
    else:
        text = "\n\n".join(f"{ROLE_NAMES[t['role']]}: {t['content']}" for t in prompt)
    return f"{system}\n\n{text}" if system else text


def is_hh(text: str) -> bool:
    """Whether a text is a conversation in Anthropic's HH layout: it opens with "Human:"."""
    return text.lstrip().startswith(HUMAN.strip())


def turns_of(value: Any, column: str, where: str) -> list[Turn]:
    """A column's list of `{"role", "content"}` turns, checked."""
    return checked_turns(value, column, where, "a text or a non-empty list of {'role', 'content'} turns")


def _text_answers(chosen: str, rejected: str, given: Prompt | None, columns: PairColumns,
                  where: str) -> tuple[Prompt, str, str]:
    """The prompt and answers of a pair written as texts: beside a prompt column, or as whole HH
    conversations (which lose a copy of a prompt column's text they start with)."""
    _require_different(chosen, rejected, columns, where)
    if given is None:
        prompt, chosen, rejected = split_shared_prompt(chosen, rejected, where)
    elif isinstance(given, str) and given.strip() and chosen.startswith(given) and rejected.startswith(given):
        prompt, chosen, rejected = given, chosen[len(given):].strip(), rejected[len(given):].strip()
    else:
        return given, chosen, rejected
    _require_different(chosen, rejected, columns, where)
    return prompt, chosen, rejected


def _feedback_pair(row: Row, columns: PairColumns, where: str) -> Pair:
    """A feedback row as a pair: the refinement chosen, the first output rejected."""
    for column, setting in ((columns.refinement, "task.refinement_column"), (columns.output, "task.output_column")):
        if row.get(column) is None:
            found = f"{column!r} is null" if column in row else f"has no {column!r}"
            other = columns.output if column == columns.refinement else columns.refinement
            raise DataError(
                f"{where}: {found}, which a feedback row (no {columns.chosen!r}) needs beside {other!r} "
                f"(it has: {', '.join(map(repr, row))})",
                hint=f"give every feedback row both its output and its refinement, or set {setting} to the column "
                "that holds it",
            )
    refinement, output = row[columns.refinement], row[columns.output]
    for column, value in ((columns.refinement, refinement), (columns.output, output)):
        if not isinstance(value, str):
            raise DataError(f"{where}: {column!r} is {_kind(value)}, not text",
                            hint="a feedback row's output and refinement are texts")
    if refinement == output:
        raise DataError(
            f"{where}: the refinement equals the output ({columns.refinement!r} and {columns.output!r} hold the same "
            "text), so neither is preferred",
            hint="drop the row: feedback that changed nothing is no preference",
        )
    prompt = _prompt_value(row, columns.prompt, where)
    if prompt is None:
        raise DataError(f"{where}: a feedback row has no {columns.prompt!r}",
                        hint="give its prompt in its own column (task.prompt_column)")
    return Pair(prompt, refinement, output, _system(row, columns.system, where))


def _last_answer(turns: list[Turn], column: str, where: str) -> tuple[list[Turn], str]:
    """A conversation's turns before its last one, and the last one's text, which must be the assistant's."""
    if turns[-1]["role"] != "assistant":
        raise DataError(
            f"{where}: the last turn of {column!r} is the {turns[-1]['role']}'s; it must be the assistant's answer",
            hint="end each conversation with the assistant turn being scored",
        )
    return turns[:-1], turns[-1]["content"]


def _before(given: Prompt | None, leading: list[Turn]) -> Prompt:
    """The prompt of answers given as turns: the prompt column's, then the turns before the answers."""
    if given is None:
        return leading
    return [*prompt_turns(given, None), *leading] if leading else given


def _hh_turns(text: str) -> list[Turn]:
    """The turns of an HH text; anything before its first "Human:" is a system turn."""
    first, *rest = SPEAKER.split(text.strip("\n"))
    turns = [{"role": "system", "content": first.strip()}] if first.strip() else []
    for speaker, content in zip(rest[::2], rest[1::2]):
        turns.append({"role": SPEAKER_ROLES[speaker], "content": content.strip()})
    if turns and turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns.pop()  # the open turn the answer goes into
    return turns


def _answer_value(row: Row, column: str, where: str, setting: str) -> Any:
    value = row.get(column)
    if value is None:
        has = ', '.join(map(repr, row)) or 'none'
        found = f"{column!r} is null" if column in row else f"has no {column!r} (it has: {has})"
        raise DataError(
            f"{where}: {found}", hint=f"give every pair both answers, or set {setting} to the column that holds them"
        )
    if not isinstance(value, (str, list)):
        raise DataError(
            f"{where}: {column!r} is {_kind(value)}, not a text or a list of turns",
            hint=f"{setting} must name a column of answers",
        )
    return value


def _prompt_value(row: Row, column: str, where: str) -> Prompt | None:
    """The row's prompt column (None when it has none): a text, or a list of turns."""
    value = row.get(column)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return turns_of(value, column, where)
    raise DataError(
        f"{where}: {column!r} is {_kind(value)}, not a text or a list of turns",
        hint="task.prompt_column must name a column of prompts",
    )


def _system(row: Row, column: str, where: str) -> str | None:
    value = row.get(column)
    if value is None or isinstance(value, str):
        return value or None
    raise DataError(f"{where}: {column!r} is {_kind(value)}, not text", hint="a system prompt is one text")


def _require_different(chosen: str, rejected: str, columns: PairColumns, where: str) -> None:
    if chosen == rejected:
        raise DataError(
            f"{where}: {columns.chosen!r} and {columns.rejected!r} are the same answer, so neither is preferred",
            hint="drop the row, or fix whichever answer was copied over the other",
        )


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else type(value).__name__
