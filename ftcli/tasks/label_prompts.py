"""Prompts that a label word completes: the template, the label words, and their token ids.

`task=prompting` (a scorer) and `task=prompt_based` (trained) read a row the same way. The row is
written with `task.template`, whose `{column}` fields are filled from it, and each label has a
word, `task.label_words`, else a space and the label's name, the way a word follows a colon in
running text. A `{mask}` field marks where the word goes, and without one it goes at the end. The
text before `{mask}` loses its trailing spaces, since the word brings its own.

A causal LM scores the word after the text before it, and an encoder-decoder scores it as the
output for that text, so for these nothing may follow the word. A masked LM reads the whole text,
with its mask token where the word goes.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import TaskConfig
from ftcli.data.readers import Row
from ftcli.errors import ConfigError, DataError
from ftcli.models.language_models import LanguageModel
from ftcli.tasks.chat import bos_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MASK_FIELD = "mask"  # the template field that marks where the label word goes
MASK_INDEX = "mask_index"  # a masked LM's feature key: where its mask token is (no model input)
FORMATTER = string.Formatter()


class Score(str, Enum):
    sum = "sum"  # log-probability of the whole label word
    mean = "mean"  # per token of the label word


@dataclass
class LabelPromptConfig(TaskConfig):
    """The settings of a task whose prediction is the label word a language model backs most."""

    template: str = "{text}\nAnswer:"
    label_words: dict[Any, str] = field(default_factory=dict)  # label -> the word scored for it; else " " + label
    score: Score = Score.sum

    def validate(self) -> list[str]:
        return super().validate() + template_problems(self.template)

    def words(self) -> dict[str, str]:
        """`label_words` keyed by label name (`{0: " bad"}` from the command line means label "0")."""
        return {str(k): v for k, v in (self.label_words or {}).items()}


def template_problems(template: str) -> list[str]:
    """What is wrong with `task.template`: unreadable, no column to fill, or more than one `{mask}`."""
    try:
        fields = [name for _, name, _, _ in FORMATTER.parse(template) if name is not None]
    except ValueError as exc:
        return [f"task.template={template!r} is not a valid template: {exc}"]
    problems = []
    if not [name for name in fields if name != MASK_FIELD]:
        problems.append(f"task.template={template!r} has no {{column}} field for the input text")
    if fields.count(MASK_FIELD) > 1:
        problems.append(f"task.template={template!r} has {{{MASK_FIELD}}} more than once; the label word goes in "
                        "one place")
    return problems


def template_columns(template: str) -> list[str]:
    """The row columns the template reads."""
    return [name for _, name, _, _ in FORMATTER.parse(unescape(template)) if name not in (None, MASK_FIELD)]


def after_word(template: str) -> str:
    """The template's text after `{mask}` (empty without one), which only a masked LM reads."""
    after, seen = [], False
    for literal, name, _, _ in FORMATTER.parse(unescape(template)):
        if seen:
            after.append(literal + (f"{{{name}}}" if name is not None else ""))
        seen = seen or name == MASK_FIELD
    return "".join(after)


def word_last_problems(template: str, scorer: str) -> list[str]:
    """Text after `{mask}` in a template whose label word is scored at the end of the text; `scorer`
    says what scores it there ("task=prompting scores it"); an unreadable template is `template_problems`'."""
    try:
        after = after_word(template).strip()
    except ValueError:
        return []
    if not after:
        return []
    return [f"task.template={template!r} goes on after {{{MASK_FIELD}}} ({after!r}), and {scorer} at the end of "
            f"the text: end the template with {{{MASK_FIELD}}}, or leave {{{MASK_FIELD}}} out (the word then goes at "
            "the end)"]


def unescape(text: str) -> str:
    """A typed `\\n` or `\\t` (Hydra keeps backslashes of command-line values as they are) as the character."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def fill(template: str, row: Row, where: str) -> tuple[str, str]:
    """The row written with the template: the text before the label word's place, and after it.

    Raises:
        DataError: for a `{column}` field the row does not have.
    """
    parts: tuple[list[str], list[str]] = ([], [])
    side = parts[0]
    for literal, name, spec, conversion in FORMATTER.parse(unescape(template)):
        side.append(literal)
        if name == MASK_FIELD:
            side = parts[1]
        elif name is not None:
            try:
                value, _ = FORMATTER.get_field(name, (), row)
            except KeyError as exc:
                raise DataError(
                    f"{where}: task.template needs the column {exc.args[0]!r}, which the row does not have "
                    f"(it has: {', '.join(map(repr, row))})",
                    hint="name the row's columns in task.template, e.g. '{text}'",
                ) from exc
            side.append(FORMATTER.format_field(FORMATTER.convert_field(value, conversion), spec or ""))
    before, after = "".join(parts[0]), "".join(parts[1])
    return (before.rstrip() if side is parts[1] else before), after


def label_words(task: LabelPromptConfig, labels: list[str]) -> list[str]:
    """The word scored for each label, in label order."""
    given = task.words()
    return [given.get(label, f" {label}") for label in labels]


def word_ids(tokenizer: PreTrainedTokenizerBase, words: list[str]) -> list[list[int]]:
    """Each label word's token ids.

    Raises:
        ConfigError: for a word that is no token at all.
    """
    ids = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in words]
    empty = [word for word, tokens in zip(words, ids) if not tokens]
    if empty:
        raise ConfigError(f"task.label_words: {empty[0]!r} is no token at all for this tokenizer")
    return ids


@dataclass(frozen=True)
class Context:
    """The token ids a language model reads before it scores the label words."""

    ids: list[int]
    cut: bool  # the prompt was longer than its room and lost its start


def contexts(tokenizer: PreTrainedTokenizerBase, texts: list[str], lm: LanguageModel, room: int) -> list[Context]:
    """The prompts as a causal LM (after its BOS token) or an encoder-decoder (with its special
    tokens) reads them, each cut from the start to its last `room` tokens: the end is the part
    right before the word."""
    encoder_decoder = lm is LanguageModel.seq2seq
    prefix = [] if encoder_decoder else bos_ids(tokenizer)
    whole = [prefix + ids for ids in tokenizer(texts, add_special_tokens=encoder_decoder)["input_ids"]]
    return [Context(ids[-room:], len(ids) > room) for ids in whole]
