"""`prompt_based`: fine-tune a language model to classify by the label words it backs (PET, LM-BFF).

Each row is written with `task.template` and scored on `task.label_words` exactly as `ftcli eval
task=prompting` scores it (`ftcli.tasks.label_prompts`), and the model is trained on the
cross-entropy over its labels' scores (`ftcli.tasks.label_word_scores`). Before any training, a
causal LM's or an encoder-decoder's predictions are `task=prompting`'s. Training moves the head
the model was pretrained with rather than a new one, so a few examples go a long way.

Any causal LM, encoder-decoder or masked LM trains this way (`AutoModelForLabelWords`); which
kind the model is fills in `task.lm`, recorded in the run's config. A masked LM reads `[MASK]`
where `{mask}` is in the template (at the end without one), and a checkpoint with no masked-LM
head, such as the embedded MiniLM, gets one tied to its input embeddings
(`ftcli.models.label_word_auto`). That makes MiniLM the default model: it is offline, pretrained
and small, where the tiny causal models are random weights for tests.

Labels are read as `sentiment` and `text_classification` read them (`data.label_names`, integer
labels indexing into it), and scored with the same metrics, accuracy first. The bundled sample
is the sentiment one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ftcli import ui
from ftcli.config.schema import DataConfig
from ftcli.data.readers import Row
from ftcli.data.splits import Splits, require_columns
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.errors import ConfigError
from ftcli.models.language_models import LanguageModel, language_model
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.bound import LogitsTask
from ftcli.tasks.classification import label_id, label_lookup, label_predictions, single_labels
from ftcli.tasks.label_prompts import (
    MASK_INDEX,
    LabelPromptConfig,
    contexts,
    fill,
    label_words,
    template_columns,
    word_ids,
    word_last_problems,
)
from ftcli.tasks.notes import WithoutNotes, add_notes, is_blank

if TYPE_CHECKING:
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedTokenizerBase
    from transformers.generation.streamers import BaseStreamer

    from ftcli.engine.inference import Outputs
    from ftcli.engine.step import Collate
    from ftcli.models.sources import ModelClass
    from ftcli.tasks.base import Autocast
    from ftcli.tasks.label_word_scores import LabelWordLoss, LabelWords


@dataclass
class PromptBasedConfig(LabelPromptConfig):
    name: str = "prompt_based"
    max_length: int = 256  # tokens of the prompt and its label word; a longer prompt loses its start
    template: str = "Review: {text}\nSentiment:"
    lm: Optional[LanguageModel] = None  # filled in from the model: causal | seq2seq | masked

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.lm is not None and self.lm is not LanguageModel.masked:
            problems += word_last_problems(self.template, f"a {self.lm.value} language model scores it")
        return problems

    def text_columns(self, data: DataConfig) -> list[str]:
        """The columns the template reads: the free text augmentation may rewrite."""
        return template_columns(self.template)

    def classifies_by_label(self) -> bool:
        return True

    def for_model(self, model_config: PretrainedConfig) -> PromptBasedConfig:
        """`task.lm` set to the kind of language model the model is.

        Raises:
            ConfigError: for a `task.lm` given that the model is not, or a template it cannot score.
        """
        kind = language_model(model_config)
        if kind is None:
            raise ConfigError(f"task=prompt_based scores label words with a language model's head, and this "
                              f"{model_config.model_type} model has none", hint="use a causal, seq2seq or masked LM")
        if self.lm is not None and self.lm is not kind:
            raise ConfigError(f"task.lm={self.lm.value}, but this {model_config.model_type} model is a {kind.value} "
                              "language model", hint="leave task.lm unset: it is read from the model")
        filled = replace(self, lm=kind)
        problems = filled.validate()
        if problems:
            raise ConfigError(problems)
        return filled


class PromptBased:
    """The registered kind; `bind` gives the `PromptBasedTask` that encodes prompts and scores label words."""

    def best_metric(self, task: PromptBasedConfig) -> str:
        return "accuracy"

    def model_class(self) -> ModelClass:
        from ftcli.models.label_word_auto import AutoModelForLabelWords

        return AutoModelForLabelWords

    def model_config(self, task: PromptBasedConfig, model: PretrainedConfig) -> dict[str, Any]:
        return {}

    def label_names(self, splits: Splits, task: PromptBasedConfig, data: DataConfig) -> list[str]:
        """`data.label_names`, else the training rows' labels in order; every `task.label_words` key among them."""
        if data.label_names is not None:
            labels = list(data.label_names)
        else:
            rows, source = splits["train"], splits.sources["train"]
            require_columns(rows, {"data.label_column": data.label_column}, source)
            labels = single_labels(rows, data.label_column, source)
        unknown = [label for label in task.words() if label not in labels]
        if unknown:
            raise ConfigError(
                f"task.label_words has a word for {unknown[0]!r}, which is not a label; the labels are: "
                f"{', '.join(labels)}",
                hint="key task.label_words by the label names (or set data.label_names)",
            )
        return labels

    def bind(
        self, cfg: PromptBasedConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> PromptBasedTask:
        return PromptBasedTask(self, cfg, data, labels, tokenizer, frozen=frozen)


@dataclass
class PromptBasedTask(LogitsTask[PromptBasedConfig]):
    """Prompt-based classification bound to a run: one prompt per row, one score per label word."""

    @cached_property
    def words(self) -> LabelWords:
        """The label words' token ids and how they are scored (refused when the model cannot tell them apart)."""
        from ftcli.tasks.label_word_scores import LabelWords

        lm, words = self.lm, label_words(self.cfg, self.labels)
        ids = word_ids(self.tokenizer, words)
        scored = [word[:1] for word in ids] if lm is LanguageModel.masked else ids
        shortened = [f"{word!r} as {self.tokenizer.convert_ids_to_tokens(first)[0]!r}"
                     for word, first, whole in zip(words, scored, ids) if first != whole]
        if shortened:
            ui.info(f"a masked LM scores each label word by its first token: {', '.join(shortened)}")
        for i, word in enumerate(scored):
            if word in scored[:i]:
                other = scored.index(word)
                same = "first token" if lm is LanguageModel.masked else "tokens"
                raise ConfigError(
                    f"task.label_words: the labels {self.labels[other]!r} and {self.labels[i]!r} have words with the "
                    f"same {same} ({self.tokenizer.convert_ids_to_tokens(word)}), so no {lm.value} language model "
                    "can tell them apart",
                    hint="give each label a word of its own" + (" that starts differently" if scored != ids else ""),
                )
        return LabelWords(ids, lm, self.cfg.score, self.tokenizer.pad_token_id or 0)

    @property
    def lm(self) -> LanguageModel:
        if self.cfg.lm is None:
            raise ConfigError(
                "task.lm is not set: the kind of language model is filled in by `ftcli train`",
                hint="bind the task to settings from `PromptBasedConfig.for_model`",
            )
        return self.cfg.lm

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        cfg, data, _ = self.cfg, self.data, self.words  # label words no model can tell apart are refused here
        if with_labels:
            require_columns(rows, {"data.label_column": data.label_column}, source)
        filled = [fill(cfg.template, row, f"{source}: record {i}") for i, row in enumerate(rows)]
        if self.lm is LanguageModel.masked:
            features, cut = self._masked(filled)
        else:
            room = cfg.max_length - (self.words.longest if self.lm is LanguageModel.causal else 0)
            read = contexts(self.tokenizer, [before for before, _ in filled], self.lm, room)
            features, cut = [{"input_ids": context.ids} for context in read], [context.cut for context in read]
        columns = template_columns(cfg.template)
        add_notes(features, cut, [all(is_blank(str(row.get(c, ""))) for c in columns) for row in rows])
        if with_labels:
            to_id = label_lookup(self.labels, data.label_names is not None)
            for index, (feature, row) in enumerate(zip(features, rows)):
                feature["labels"] = label_id(row[data.label_column], to_id, self.labels, source, index)
        return features

    def _masked(self, filled: list[tuple[str, str]]) -> tuple[list[Feature], list[bool]]:
        """`[CLS] before [MASK] after [SEP]` (with the tokenizer's own special tokens, as it puts them
        around a text), cut from the start of `before`, then the end of `after`, to `task.max_length`;
        and which rows were cut. Each part is tokenized alone, so a row's text that spells the mask
        token cannot move the mask."""
        tokenizer, mask = self.tokenizer, self.tokenizer.mask_token_id
        if mask is None:
            raise ConfigError(f"task.lm=masked, but the tokenizer {type(tokenizer).__name__} has no mask token")
        probe = tokenizer(tokenizer.mask_token)["input_ids"]  # the special tokens around a text, and the mask
        prefix, suffix = probe[: probe.index(mask)], probe[probe.index(mask) + 1:]
        room = self.cfg.max_length - len(prefix) - len(suffix) - 1
        if room < 0:
            raise ConfigError(f"task.max_length={self.cfg.max_length} leaves no room for the mask token and the "
                              "tokenizer's special tokens", hint=f"set task.max_length={len(probe)} or more")
        befores = tokenizer([before for before, _ in filled], add_special_tokens=False)["input_ids"]
        afters = tokenizer([after for _, after in filled], add_special_tokens=False)["input_ids"]
        features, cut = [], []
        for before, after in zip(befores, afters):
            kept_after = after[:room]
            kept_before = before[len(before) - min(len(before), room - len(kept_after)):]
            features.append({"input_ids": prefix + kept_before + [mask] + kept_after + suffix,
                             MASK_INDEX: len(prefix) + len(kept_before)})
            cut.append(len(kept_before) + len(kept_after) < len(before) + len(after))
        return features, cut

    def collator(self) -> Collate:
        from ftcli.tasks.label_word_scores import PromptCollator

        return WithoutNotes(PromptCollator(self.tokenizer.pad_token_id or 0, left=self.lm is LanguageModel.causal))

    def training_step(self) -> LabelWordLoss:
        from ftcli.tasks.label_word_scores import LabelWordLoss

        return LabelWordLoss(words=self.words)

    def outputs(
        self, model: nn.Module, features: list[Feature], batch_size: int, autocast: Autocast,
        streamer: BaseStreamer | None = None,
    ) -> Outputs:
        """The label words' scores for every feature, through the same head the training step uses."""
        from ftcli.engine.inference import run_inference
        from ftcli.tasks.label_word_scores import LabelWordHead, output_layer

        head = LabelWordHead(model, self.words, output_layer(model, self.words))
        return run_inference(head, features, self.collator(), batch_size, autocast)

    def metrics(self, logits: np.ndarray, features: list[Feature]) -> dict[str, Any]:
        from ftcli.tasks import metrics

        references = np.array([f["labels"] for f in features])
        return metrics.classification_metrics(logits.argmax(-1), references, self.labels)

    def prediction_fields(self) -> tuple[str, ...]:
        return ("label", "probs")

    def predictions(self, outputs: Outputs, features: list[Feature]) -> list[dict[str, Any]]:
        return label_predictions(np.asarray(outputs.logits), self.labels)


TASKS.register("prompt_based", PromptBasedConfig)(PromptBased())
