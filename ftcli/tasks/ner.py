"""Named-entity recognition (`ner`): one tag per word, learnt on sub-word tokens.

Training rows are pre-tokenised: `task.tokens_column` holds the words (a list of strings) and
`task.tags_column` one tag per word, as strings in IOB1, IOB2 or IOBES, or as integers indexing
`data.label_names`. CoNLL column files (`.conll`, `.iob`, `.bio`) read into exactly such rows.
Tags are normalised to IOB2 (`tag_schemes.py`); the label set is IOB2 too, from
`data.label_names` (converted) or from the entity types of the training data.

A word's tag is learnt at its first sub-token (`alignment.py`), and metrics and predictions
read it back there, so everything is scored per word of the data: a word that truncation cut
off counts as predicted `O`. `predict` also takes raw text (a string in `data.text_column`, or
`.txt` lines): the tokenizer splits it into words, and its offsets give every entity's character
span in the original string.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ftcli.config.schema import DataConfig, TaskConfig
from ftcli.data.readers import Row
from ftcli.data.splits import Splits, require_columns
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.engine.step import Collate, LossUnit, ModelLoss, TrainingStep
from ftcli.errors import ConfigError, DataError
from ftcli.tasks import alignment
from ftcli.tasks.alignment import token_labels, word_spans
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.bound import LogitsTask, require_fast_tokenizer
from ftcli.tasks.entities import entity_spans
from ftcli.tasks.notes import NOTE, add_notes, is_blank
from ftcli.tasks.tag_schemes import (
    OUTSIDE,
    TagError,
    TagScheme,
    detect_scheme,
    inside_of,
    iob2_label_names,
    iob2_labels,
    to_iob2,
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from ftcli.engine.inference import Outputs
    from ftcli.models.sources import ModelClass

log = logging.getLogger(__name__)

ALIGNMENT = "alignment"  # the feature key holding a row's `Words`; the collator leaves it out


@dataclass
class NerConfig(TaskConfig):
    name: str = "ner"
    max_length: int = 128  # sub-word tokens per sentence, special tokens included; words past it count as O
    tokens_column: str = "tokens"  # a list of words per row; predict also takes raw text in data.text_column
    tags_column: str = "tags"  # one tag per word: strings, or integers indexing data.label_names
    scheme: TagScheme = TagScheme.auto  # the data's tagging scheme; always learnt as IOB2
    label_all_subtokens: bool = False  # train on every sub-token of a word (B- becomes I-), not only the first
    strict: bool = False  # seqeval's strict IOB2 mode: an entity that starts with I- is not counted

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.tokens_column == self.tags_column:
            problems.append(f"task.tokens_column and task.tags_column are both {self.tokens_column!r}")
        return problems


@dataclass(frozen=True)
class Words:
    """What one encoded row needs to turn token logits back into word tags and entities."""

    words: list[str]  # the row's words; for raw text, the pieces the tokenizer split it into
    word_ids: list[int | None]  # per token, the index of its word (None: a special token)
    truncated: bool = False  # the row was longer than task.max_length
    gold: list[str] | None = None  # per word, the IOB2 tag the data gives
    text: str | None = None  # raw text input: the string itself
    spans: list[tuple[int, int]] | None = None  # raw text input: each word's character span in `text`

    @property
    def first_tokens(self) -> list[int | None]:
        """Per word, the position of its first sub-token (None: cut off by truncation)."""
        return alignment.first_tokens(self.word_ids, len(self.words))


class TokenClassification:
    """The registered kind; `bind` gives the `NerTask` that encodes and scores."""

    def best_metric(self, task: NerConfig) -> str:
        return "f1"  # entity-level micro F1

    def model_class(self) -> ModelClass:
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification

    def model_config(self, task: NerConfig, model: PretrainedConfig) -> dict[str, Any]:
        return {}

    def label_names(self, splits: Splits, task: NerConfig, data: DataConfig) -> list[str]:
        if data.label_names is not None:
            try:
                return iob2_label_names(list(data.label_names))
            except TagError as exc:
                raise ConfigError(f"data.label_names item {exc.position}: {exc.message}", hint=exc.hint) from exc
        rows, source = splits["train"], splits.sources["train"]
        require_columns(rows, _columns(task), source)
        types: set[str] = set()
        for index, row in enumerate(rows):
            tags = _gold_tags(row, index, len(_words(row, index, task, data, source)), task, data, source)
            types.update(tag[2:] for tag in tags if tag != OUTSIDE)
        return iob2_labels(types)

    def bind(self, cfg: NerConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
             frozen: FrozenModels = NO_FROZEN_MODELS) -> NerTask:
        return NerTask(self, cfg, data, labels, tokenizer, frozen=frozen)


class NerTask(LogitsTask[NerConfig]):
    """Token classification bound to a run: one logits row per sub-word token, read back per word."""

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """Features in row order: lists of words are tokenised as pre-split words; raw text (predict only) whole."""
        task, data, labels, tokenizer = self.cfg, self.data, self.labels, self.tokenizer
        require_fast_tokenizer(tokenizer, "ner", "to map sub-tokens to words")
        if with_labels:
            require_columns(rows, _columns(task), source)
        inputs = [_words(row, index, task, data, source, raw_allowed=not with_labels) for index, row in enumerate(rows)]
        if not with_labels:
            return _noted(_tokenize(inputs, tokenizer, task.max_length), inputs)
        gold = [_gold_tags(row, index, len(inputs[index]), task, data, source) for index, row in enumerate(rows)]
        if task.scheme is TagScheme.auto:
            _log_scheme(rows, task, data, source)
        features = _noted(_tokenize(inputs, tokenizer, task.max_length), inputs)
        ids, inside = {label: i for i, label in enumerate(labels)}, inside_of(labels)
        for index, (feature, tags) in enumerate(zip(features, gold)):
            words = feature[ALIGNMENT] = replace(feature[ALIGNMENT], gold=tags)
            word_labels = _label_ids(tags, rows[index][task.tags_column], ids, labels, f"{source}: record {index}")
            feature["labels"] = token_labels(words.word_ids, word_labels, task.label_all_subtokens, inside)
        return features

    def collator(self) -> Collate:
        from transformers import DataCollatorForTokenClassification

        return ModelInputs(DataCollatorForTokenClassification(self.tokenizer))

    def training_step(self) -> TrainingStep:
        return ModelLoss(LossUnit.tokens)

    def metrics(self, logits: list[np.ndarray], features: list[Feature]) -> dict[str, Any]:
        from ftcli.tasks.metrics import entity_metrics

        labels = self.labels
        predicted = [_word_tags(row, feature[ALIGNMENT], labels) for row, feature in zip(logits, features)]
        gold = [feature[ALIGNMENT].gold for feature in features]
        types = sorted({label[2:] for label in labels if label != OUTSIDE})
        return entity_metrics(predicted, gold, types, self.cfg.strict)

    def predictions(self, outputs: Outputs, features: list[Feature]) -> list[dict[str, Any]]:
        """Raw text gets `{"entities": [...]}` with character offsets; a list of words gets
        `{"tags": [...], "entities": [...]}`, one tag per word and entities by word index.

        Each entity is `{"text", "type", "start", "end", "score"}`, `end` exclusive, so
        `text[start:end]` (or `tokens[start:end]`) is the entity; the score is the mean over its
        words of the probability of each word's tag. Tags are repaired to valid IOB2 (an `I-`
        that continues nothing becomes `B-`), so tags and entities always agree.
        """
        labels = self.labels
        results = []
        for row, feature in zip(outputs.logits, features):
            words: Words = feature[ALIGNMENT]
            shifted = np.exp(row - row.max(-1, keepdims=True))
            probs = shifted / shifted.sum(-1, keepdims=True)
            best = probs.argmax(-1)
            positions = words.first_tokens
            tags = to_iob2([labels[best[p]] if p is not None else OUTSIDE for p in positions])
            scores = [float(probs[p, best[p]]) if p is not None else 0.0 for p in positions]
            entities = []
            for span in entity_spans(tags, scores):
                if words.text is not None and words.spans is not None:  # raw text: both are set
                    start, end = words.spans[span.start][0], words.spans[span.end - 1][1]
                    text = words.text[start:end]
                else:
                    start, end = span.start, span.end
                    text = " ".join(words.words[start:end])
                entities.append(
                    {"text": text, "type": span.type, "start": start, "end": end, "score": round(span.score, 6)}
                )
            results.append({"entities": entities} if words.text is not None else {"tags": tags, "entities": entities})
        return results

    def prediction_fields(self) -> tuple[str, ...]:
        return ("tags", "entities")


class ModelInputs:
    """A collator that passes each feature's model inputs on and leaves its `Words` and `RowNote` behind."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        return self.collate([{k: v for k, v in f.items() if k not in (ALIGNMENT, NOTE)} for f in features])


def _columns(task: NerConfig) -> dict[str, str]:
    return {"task.tokens_column": task.tokens_column, "task.tags_column": task.tags_column}


def _tokenize(inputs: list[list[str] | str], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """Model inputs and `Words` per input, in input order: word lists as pre-split words, strings whole.

    For a string the tokenizer's pre-tokenizer decides the words, and its offsets say where each
    word is in the string.
    """
    features: list[dict[str, Any]] = [{} for _ in inputs]
    for pre_split in (True, False):
        at = [i for i, given in enumerate(inputs) if isinstance(given, list) == pre_split]
        if not at:
            continue
        encoded = tokenizer(
            [inputs[i] for i in at], is_split_into_words=pre_split, truncation=True, max_length=max_length,
            return_offsets_mapping=not pre_split,
        )
        for k, i in enumerate(at):
            given = inputs[i]
            word_ids, truncated = encoded.word_ids(k), bool(encoded.encodings[k].overflowing)
            if isinstance(given, list):  # pre_split
                words = Words(given, word_ids, truncated)
            else:
                text, found = given, word_spans(word_ids, encoded["offset_mapping"][k])
                words = Words([text[start:end] for start, end in found], word_ids, truncated, text=text, spans=found)
            features[i] = {key: encoded[key][k] for key in encoded if key != "offset_mapping"}
            features[i][ALIGNMENT] = words
    return features


def _noted(features: list[dict[str, Any]], inputs: list[list[str] | str]) -> list[dict[str, Any]]:
    """The features with each row's `RowNote`: cut when words fell past task.max_length, empty without words."""
    return add_notes(features, [f[ALIGNMENT].truncated for f in features], [is_blank(given) for given in inputs])


def _words(
    row: Row, index: int, task: NerConfig, data: DataConfig, source: str, raw_allowed: bool = False
) -> list[str] | str:
    """The row's words (a list of strings), or, when `raw_allowed`, its raw text (a string)."""
    column = task.tokens_column
    if column in row:
        tokens = row[column]
        if not isinstance(tokens, list):
            raise DataError(
                f"{source}: record {index}: {column!r} is {type(tokens).__name__}, not a list of tokens",
                hint='task.tokens_column must hold pre-tokenised words, e.g. ["Ada", "lives", "in", "Paris"]'
                + (f"; for raw text use a {data.text_column!r} field (data.text_column)" if raw_allowed else ""),
            )
        for position, token in enumerate(tokens):
            if not isinstance(token, str):
                raise DataError(
                    f"{source}: record {index}: token {position} of {column!r} is {type(token).__name__}, not text",
                    hint="every token must be a string",
                )
        return tokens
    text = row.get(data.text_column)
    if raw_allowed and isinstance(text, str):
        return text
    if raw_allowed and data.text_column in row:
        raise DataError(
            f"{source}: record {index}: {data.text_column!r} is {type(text).__name__}, not text",
            hint=f"give raw text as a string in {data.text_column!r}, or words as a list in {column!r}",
        )
    wanted = f"{column!r} (task.tokens_column)"
    if raw_allowed:
        wanted += f" or {data.text_column!r} (data.text_column)"
    raise DataError(f"{source}: record {index} has no {wanted} field", hint="give every record that field")


def _gold_tags(row: Row, index: int, n_words: int, task: NerConfig, data: DataConfig, source: str) -> list[str]:
    """The row's tags, checked and normalised to IOB2."""
    column = task.tags_column
    tags = row[column]
    if not isinstance(tags, list):
        raise DataError(
            f"{source}: record {index}: {column!r} is {type(tags).__name__}, not a list of tags",
            hint='task.tags_column must hold one tag per token, e.g. ["B-PER", "O", "O", "B-LOC"]',
        )
    if len(tags) != n_words:
        raise DataError(
            f"{source}: record {index} has {n_words} tokens but {len(tags)} tags",
            hint="give exactly one tag per token",
        )
    names = [_tag_name(tag, index, position, data, source) for position, tag in enumerate(tags)]
    try:
        return to_iob2(names, task.scheme)
    except TagError as exc:
        raise DataError(f"{source}: record {index}, token {exc.position}: {exc.message}", hint=exc.hint) from exc


def _tag_name(tag: Any, index: int, position: int, data: DataConfig, source: str) -> str:
    """A tag as a string: integers index data.label_names."""
    if isinstance(tag, str):
        return tag
    where = f"{source}: record {index}, token {position}"
    if isinstance(tag, int) and not isinstance(tag, bool):
        if data.label_names is None:
            raise DataError(
                f"{where}: tag {tag} is an integer, and data.label_names is not set",
                hint="integer tags index data.label_names: set it, e.g. data.label_names=[O,B-PER,I-PER]",
            )
        if not 0 <= tag < len(data.label_names):
            raise DataError(
                f"{where}: tag {tag} is out of range for data.label_names ({len(data.label_names)} names)",
                hint="fix the record, or list every tag in data.label_names",
            )
        return data.label_names[tag]
    raise DataError(
        f"{where}: tag {tag!r} is {type(tag).__name__}, not a tag", hint="tags are strings such as B-PER, or integers"
    )


def _label_ids(tags: list[str], written: list[Any], ids: dict[str, int], labels: list[str], where: str) -> list[int]:
    """Label ids of a row's IOB2 `tags`; `written` are the tags as the data gives them, for the message."""
    for position, tag in enumerate(tags):
        if tag not in ids:
            shown = repr(written[position]) + (f" (IOB2 {tag!r})" if written[position] != tag else "")
            raise DataError(
                f"{where}, token {position}: tag {shown} is not in the label set {labels}",
                hint="fix the record, or list every tag in data.label_names when training",
            )
    return [ids[tag] for tag in tags]


def _log_scheme(rows: list[Row], task: NerConfig, data: DataConfig, source: str) -> None:
    sequences = (
        [_tag_name(tag, index, position, data, source) for position, tag in enumerate(row[task.tags_column])]
        for index, row in enumerate(rows)
    )
    scheme = detect_scheme(sequences)
    if scheme is not TagScheme.iob2:
        log.info("%s: the tags are %s; they are read as IOB2", source, scheme.value.upper())


def _word_tags(logits: np.ndarray, words: Words, labels: list[str]) -> list[str]:
    """The predicted tag of each word, read at its first sub-token; O for a word that was cut off."""
    best = logits.argmax(-1)
    return [labels[best[p]] if p is not None else OUTSIDE for p in words.first_tokens]


TASKS.register("ner", NerConfig)(TokenClassification())
