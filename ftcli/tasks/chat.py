"""Instruction rows as conversations, and conversations as token segments with a loss mask.

Three row layouts are read (`task.format`): a chat `messages` list of `{"role", "content"}`
turns; Alpaca's `instruction` / `input` / `output`; or one `prompt` and one `response`. Each
becomes a list of turns. A conversation is written out with the tokenizer's chat template when
it has one (`task.template=auto`), or with the plain template below, and cut into segments:
the text of each assistant turn is trained on, everything before it is prompt.

The plain template, used for tokenizers without a chat template (base models, BERT vocabularies):

    ### System:
    {system}

    ### Instruction:
    {user}

    ### Response:
    {assistant}<end>

`<end>` is the tokenizer's EOS token (its SEP token when it has none), so the model learns to
stop; an Alpaca `input` is added to the instruction as `\\n\\n### Input:\\n{input}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any

from ftcli.data.readers import Row
from ftcli.errors import DataError, ModelError

ROLES = ("system", "user", "assistant")
PLAIN_HEADERS = {"system": "### System:\n", "user": "### Instruction:\n", "assistant": "### Response:\n"}
TURN_SEPARATOR = "\n\n"


class RowFormat(str, Enum):
    auto = "auto"  # messages, else instruction/input/output, else prompt/response, per row
    messages = "messages"
    alpaca = "alpaca"
    prompt_response = "prompt_response"


class Template(str, Enum):
    auto = "auto"  # the tokenizer's chat template when it has one, else plain
    chat = "chat"  # the tokenizer's chat template; an error when it has none
    plain = "plain"


@dataclass(frozen=True)
class Columns:
    """Where each layout's fields are, and the text column `predict` puts plain-text input under."""

    messages: str
    instruction: str
    input: str
    output: str
    prompt: str
    response: str
    text: str


@dataclass(frozen=True)
class Segment:
    ids: list[int]
    trained: bool


def conversation(row: Row, fmt: RowFormat, columns: Columns, system_prompt: str, where: str) -> list[dict[str, str]]:
    """The row's turns, with `system_prompt` first when it is set and the row has no system turn.

    A row that has only a prompt (predict input; `data.text_column` for plain text) gives a
    conversation that ends with the user's turn.
    """
    found = _detect(row, columns) if fmt == RowFormat.auto else RowFormat(fmt)
    if found is None:
        expected = f"{columns.messages!r}, {columns.instruction!r} or {columns.prompt!r}"
        raise DataError(
            f"{where}: has none of the columns {expected} (it has: {', '.join(map(repr, row)) or 'none'})",
            hint="set task.messages_column, task.instruction_column or task.prompt_column to the right column",
        )
    fmt = found
    if fmt is RowFormat.messages:
        turns = _messages(row, columns.messages, where)
    elif fmt is RowFormat.alpaca:
        text = _text(row, columns.instruction, where)
        extra = row.get(columns.input)
        if extra is not None and _text(row, columns.input, where).strip():
            text += f"{TURN_SEPARATOR}### Input:\n{extra}"
        turns = [{"role": "user", "content": text}]
        if row.get(columns.output) is not None:
            turns.append({"role": "assistant", "content": _text(row, columns.output, where)})
    else:
        column = columns.prompt if columns.prompt in row else columns.text
        turns = [{"role": "user", "content": _text(row, column, where)}]
        if row.get(columns.response) is not None:
            turns.append({"role": "assistant", "content": _text(row, columns.response, where)})
    if system_prompt and turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": system_prompt})
    return turns


def _detect(row: Row, columns: Columns) -> RowFormat | None:
    if columns.messages in row:
        return RowFormat.messages
    if columns.instruction in row:
        return RowFormat.alpaca
    if columns.prompt in row or columns.text in row:
        return RowFormat.prompt_response
    return None


def _messages(row: Row, column: str, where: str) -> list[dict[str, str]]:
    return checked_turns(row.get(column), column, where, "a non-empty list of {'role', 'content'} turns")


def checked_turns(value: Any, column: str, where: str, expected: str) -> list[dict[str, str]]:
    """`value` as a list of `{"role", "content"}` turns, each checked; `expected` says what the
    column must hold when it is not a non-empty list."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: {column!r} must be {expected}")
    turns = []
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise DataError(
                f"{where}: {column}[{i}] is {turn!r}",
                hint=f"each turn needs a role ({', '.join(ROLES)}) and a text content",
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns


def _text(row: Row, column: str, where: str) -> str:
    value = row.get(column)
    if not isinstance(value, str):
        raise DataError(
            f"{where}: {column!r} is {type(value).__name__ if column in row else 'missing'}, not text",
            hint=f"point the setting for {column!r} at a column of strings",
        )
    return value


def bos_ids(tokenizer: Any) -> list[int]:
    """The BOS token a text starts with, if the tokenizer has one distinct from EOS (Llama's `<s>`;
    GPT-2's `<|endoftext|>` is both, and starts nothing)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return [bos] if bos is not None and bos != eos else []


class Renderer:
    """Writes conversations as token segments, with the chat template or the plain one."""

    def __init__(self, tokenizer: Any, template: Template) -> None:
        has_chat = bool(getattr(tokenizer, "chat_template", None))
        if template == Template.chat and not has_chat:
            raise ModelError(
                "task.template=chat but this tokenizer has no chat template",
                hint="use task.template=plain (or auto), or a model whose tokenizer ships a chat template",
            )
        self.tokenizer = tokenizer
        self.chat = has_chat and template != Template.plain
        self.end_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        if self.end_id is None and not self.chat:
            raise ModelError("the tokenizer has neither an EOS nor a SEP token to end a response with")
        self.bos = [] if self.chat else bos_ids(tokenizer)

    def stop_ids(self) -> list[int]:
        """Token ids that end an answer: `<end>` for the plain template; for a chat template, the
        token it writes right after an assistant's text (ChatML's `<|im_end|>`), which is not the
        tokenizer's EOS in every model (base Qwen models end text with `<|endoftext|>`)."""
        stops = [self.end_id] if self.end_id is not None else []
        after = self._encode(self._after_answer.lstrip(" \n"))
        if after and after[0] in self.tokenizer.all_special_ids:
            stops.append(after[0])
        return sorted(set(stops))

    @cached_property
    def _after_answer(self) -> str:
        """The text a chat template writes right after an assistant's text ("" for the plain template)."""
        if not self.chat:
            return ""
        marker = "\u2063"  # a character no template writes, to find where the assistant's text ends
        text = self._apply([{"role": "user", "content": "?"}, {"role": "assistant", "content": marker}],
                           generation_prompt=False)
        return text[text.rindex(marker) + 1:] if marker in text else ""

    def segments(self, turns: list[dict[str, str]], where: str) -> list[Segment]:
        """Prompt and response segments, in order; every assistant turn is a trained segment."""
        if not any(t["role"] == "assistant" for t in turns):
            raise DataError(f"{where}: the conversation has no assistant turn to train on")
        return self._chat_segments(turns, where) if self.chat else self._plain_segments(turns)

    def answer_segments(self, context: list[dict[str, str]], pieces: list[tuple[str, bool]]) -> list[Segment]:
        """`context` and the opening of an assistant turn, then that turn's text written as `pieces`
        (each trained or not), then the turn's closing, trained so that the model learns to stop.

        Each piece is tokenised on its own, as the segments of a conversation are, so which tokens
        carry the loss is exact whatever the tokenizer merges across the joins.
        """
        body = [Segment(self._encode(text), trained) for text, trained in pieces if text]
        return [Segment(self.prompt(context), False), *body, Segment(self._closing(), True)]

    def _closing(self) -> list[int]:
        """What ends an assistant turn: `<end>` for the plain template; what the chat template writes
        after the assistant's text (ChatML's `<|im_end|>` and newline), else the end token."""
        return self._encode(self._after_answer) or ([self.end_id] if self.end_id is not None else [])

    def prompt(self, turns: list[dict[str, str]]) -> list[int]:
        """Token ids of `turns` followed by the opening of an assistant turn: what generation continues."""
        if self.chat:
            return self._encode(self._apply(turns, generation_prompt=True))
        return self.bos + self._encode(self._plain_prefix(turns))

    def _plain_prefix(self, turns: list[dict[str, str]]) -> str:
        """The plain template's text of `turns` (assistant turns end where `<end>` goes) and a response header."""
        return "".join(self._plain_turn(t) for t in turns) + PLAIN_HEADERS["assistant"]

    def _plain_turn(self, turn: dict[str, str]) -> str:
        if turn["role"] == "assistant":
            return turn["content"]
        return PLAIN_HEADERS[turn["role"]] + turn["content"] + TURN_SEPARATOR

    def _plain_segments(self, turns: list[dict[str, str]]) -> list[Segment]:
        segments: list[Segment] = []
        pending = ""
        for turn in turns:
            if turn["role"] != "assistant":
                pending += self._plain_turn(turn)
                continue
            prompt = pending + PLAIN_HEADERS["assistant"]
            segments.append(Segment((self.bos if not segments else []) + self._encode(prompt), False))
            segments.append(Segment(self._encode(turn["content"]) + [self.end_id], True))
            pending = TURN_SEPARATOR
        return segments

    def _chat_segments(self, turns: list[dict[str, str]], where: str) -> list[Segment]:
        """Cut the rendered conversation where each assistant turn starts and ends.

        Each boundary comes from rendering a prefix of the conversation, so this relies on the
        template writing a prefix of a conversation as a prefix of its text; templates that do
        not (some rewrite earlier turns) are reported rather than trained on wrongly.
        """
        segments, done = [], ""
        for i, turn in enumerate(turns):
            if turn["role"] != "assistant":
                continue
            before = self._apply(turns[:i], generation_prompt=True)
            through = self._apply(turns[: i + 1], generation_prompt=False)
            if not (before.startswith(done) and through.startswith(before)):
                raise ModelError(
                    f"{where}: the tokenizer's chat template does not write the conversation's turns as a prefix "
                    "of the whole, so the assistant's tokens cannot be told apart",
                    hint="use task.template=plain, or task.train_on_prompt=true",
                )
            segments.append(Segment(self._encode(before[len(done):]), False))
            segments.append(Segment(self._encode(through[len(before):]), True))
            done = through
        return segments

    def _apply(self, turns: list[dict[str, str]], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
