"""`prompting`: zero- and few-shot classification by a language model's likelihood of label words.

No training: `ftcli eval task=prompting model=<causal LM or encoder-decoder>` scores a model as it
is, the prompt-engineering baseline to set beside fine-tuned runs (same metrics as `sentiment`
and `text_classification`). It is a scorer (`ftcli.tasks.scorers`), not a trainable task.

Each input is written with `task.template`, whose `{column}` fields are filled from the row
("Review: {text}\\nSentiment:"), as `task=prompt_based` writes it (`ftcli.tasks.label_prompts`).
`task.shots` solved examples from the training split come first, each as its template followed by
its label word and `task.shot_separator`; they are drawn once, seeded, and shared by every input,
so every input sees the same demonstrations. The
prediction is the label whose word the model finds most likely to come next: the sum of the
log-probabilities of its tokens (`task.score=mean` divides by the token count, which stops
multi-token words from losing for their length). Label words default to the label names with a
leading space, the way a word follows a colon in running text.

A causal LM reads the prompt and then the word; an encoder-decoder (T5, FLAN-T5, BART) reads the
prompt and scores the word as the decoder's output. Encoder-only models (BERT, the embedded
MiniLM) are refused: scoring their mask token's logits is what `task=prompt_based` trains.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import DataConfig
from ftcli.data.readers import Row
from ftcli.errors import ConfigError, DataError, ModelError
from ftcli.models.language_models import LanguageModel, language_model
from ftcli.tasks.label_prompts import (
    LabelPromptConfig,
    Score,
    contexts,
    fill,
    label_words,
    unescape,
    word_ids,
    word_last_problems,
)
from ftcli.tasks.scorers import SCORERS, ScoredRows

if TYPE_CHECKING:
    import numpy as np
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from ftcli.models.sources import ModelClass


@dataclass
class PromptingConfig(LabelPromptConfig):
    name: str = "prompting"
    max_length: int = 1024  # prompt tokens kept, from the end (demonstrations go first)
    shots: int = 0  # solved training examples before each input
    shot_separator: str = "\n\n"
    sample: str = "sentiment"  # the bundled sample evaluated when no data is given

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.shots < 0:
            problems.append(f"task.shots={self.shots} must be 0 (zero-shot) or more")
        return problems + word_last_problems(self.template, "task=prompting scores it")


@dataclass(frozen=True)
class Prompts:
    texts: list[str]  # one full prompt per row, demonstrations included
    references: list[int] | None  # label index per row, when the rows have labels
    words: list[str]  # the word scored for each label, in label order


class Prompting:
    """Builds prompts from rows and scores label words with a language model (a `Scorer`)."""

    def mode(self, task: PromptingConfig) -> str:
        return f"{task.shots}-shot" if task.shots else "zero-shot"

    def sample(self, task: PromptingConfig) -> str:
        return task.sample

    def needs_training_rows(self, task: PromptingConfig, data: DataConfig) -> bool:
        """Demonstrations come from the training split, and so does the label set when no setting gives it."""
        return task.shots > 0 or not (task.label_words or data.label_names)

    def settings(self, task: PromptingConfig) -> dict[str, Any]:
        return {"shots": task.shots, "template": task.template}

    def score_rows(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: list[Row], source: str,
        task: PromptingConfig, data: DataConfig,
        labels: list[str], train: list[Row] | None, seed: int, batch_size: int,
    ) -> ScoredRows:
        """Each row's prompt, the label words' log-likelihoods after it, and the metrics when rows have labels."""
        prompts = self.prompts(rows, source, task, data, labels, train, seed)
        scores = self.score(model, tokenizer, prompts, task, batch_size)
        metrics = self.metrics(scores, prompts, labels) if prompts.references is not None else None
        return ScoredRows(scores, metrics)

    def model_class(self, config: PretrainedConfig) -> ModelClass:
        """The Auto class for scoring with this model; encoder-only models have nothing to score with."""
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        kind = language_model(config)
        if kind is LanguageModel.seq2seq:
            return AutoModelForSeq2SeqLM
        if kind is LanguageModel.causal:
            return AutoModelForCausalLM
        raise ModelError(
            f"task=prompting scores label words with a language model, and this {config.model_type} model is an "
            "encoder without one",
            hint="use a causal LM (model=gpt2, Qwen/Qwen2.5-0.5B, ...) or an encoder-decoder (google/flan-t5-base); "
            "to classify with an encoder, fine-tune it: ftcli train task=sentiment or task=prompt_based",
        )

    def label_names(self, rows: list[Row] | None, task: PromptingConfig, data: DataConfig) -> list[str]:
        if task.label_words:
            return list(task.words())
        if data.label_names:
            return list(data.label_names)
        if rows is None:
            raise ConfigError(
                "task=prompting needs the label set: there is no training split to read it from",
                hint="set task.label_words='{positive: \" great\", negative: \" awful\"}' or data.label_names=[...]",
            )
        return sorted({_label(row, data.label_column, i, "train") for i, row in enumerate(rows)})

    def prompts(
        self, rows: list[Row], source: str, task: PromptingConfig, data: DataConfig, labels: list[str],
        train: list[Row] | None, seed: int,
    ) -> Prompts:
        words = label_words(task, labels)
        word_of = dict(zip(labels, words))
        demos = ""
        if task.shots:
            if not train:
                raise ConfigError(
                    f"task.shots={task.shots} needs solved examples, and there is no training split",
                    hint="set data.train_file=PATH, or task.shots=0",
                )
            picked = random.Random(seed).sample(range(len(train)), min(task.shots, len(train)))
            demos = "".join(
                fill(task.template, train[i], f"train record {i}")[0]
                + word_of[_known(_label(train[i], data.label_column, i, "train"), labels, i, "train")]
                + unescape(task.shot_separator)
                for i in picked
            )
        texts = [demos + fill(task.template, row, f"{source}: record {i}")[0] for i, row in enumerate(rows)]
        labelled = bool(rows) and all(data.label_column in row for row in rows)
        references = (
            [labels.index(_known(_label(row, data.label_column, i, source), labels, i, source))
             for i, row in enumerate(rows)]
            if labelled else None
        )
        return Prompts(texts, references, words)

    def score(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Prompts, task: PromptingConfig,
        batch_size: int,
    ) -> np.ndarray:
        """Log-likelihood of each label word after each prompt: an array (rows, labels)."""
        import numpy as np

        from ftcli.engine.word_scores import word_log_likelihoods

        kind = LanguageModel.seq2seq if getattr(model.config, "is_encoder_decoder", False) else LanguageModel.causal
        read = [context.ids for context in contexts(tokenizer, prompts.texts, kind, task.max_length)]
        words = word_ids(tokenizer, prompts.words)
        totals = word_log_likelihoods(model, read, words, batch_size)
        if task.score == Score.mean:
            totals = totals / np.array([len(ids) for ids in words])
        return totals

    def metrics(self, scores: np.ndarray, prompts: Prompts, labels: list[str]) -> dict[str, Any]:
        import numpy as np

        from ftcli.tasks import metrics

        return metrics.classification_metrics(scores.argmax(-1), np.array(prompts.references), labels)


def _label(row: Row, column: str, index: int, source: str) -> str:
    if column not in row:
        raise DataError(f"{source}: record {index} has no {column!r} column", hint="set data.label_column")
    value = row[column]
    return str(int(value)) if isinstance(value, (bool, int)) else str(value)


def _known(label: str, labels: list[str], index: int, source: str) -> str:
    if label not in labels:
        raise DataError(
            f"{source}: record {index} has the label {label!r}, which is not among {labels}",
            hint="add it to task.label_words (or data.label_names), or drop the row",
        )
    return label


SCORERS.register("prompting", PromptingConfig)(Prompting())
