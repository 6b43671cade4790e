"""Text-to-text tasks on encoder-decoder models: `summarization` and `translation`.

Each row has a source text (`data.text_column`) and a target (`task.target_column`); the
source gets `task.source_prefix` (T5 expects one: "summarize: ", "translate English to German: ").
Training is teacher-forced cross-entropy on the target; evaluation and `predict` generate with
the settings under `task.generation` and score what was written: ROUGE-1/2/L/Lsum for
summarisation, BLEU and chrF for translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import DataConfig, GenerationConfig, TaskConfig
from ftcli.data.readers import Row
from ftcli.data.splits import Splits, require_columns, text_field
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.engine.step import IGNORE_INDEX, Collate, LossUnit, ModelLoss, TrainingStep
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.generating import GeneratingTask
from ftcli.tasks.notes import NOTE, add_notes, cut_rows, is_blank

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from ftcli.models.sources import ModelClass

TARGET_FIELDS = ("labels", "decoder_input_ids", "reference")  # what a feature holds of its target, not its source


@dataclass
class Seq2SeqConfig(TaskConfig):
    name: str = "summarization"
    max_length: int = 512  # source tokens; longer sources are truncated
    max_target_length: int = 128  # target tokens for training; longer targets are truncated
    target_column: str = "target"
    source_prefix: str = ""
    generation: GenerationConfig = field(default_factory=GenerationConfig)


class Seq2Seq:
    """The registered kind of both tasks; `metric` names the bundled metric module they differ in."""

    def __init__(self, metric: str, headline: str) -> None:
        self.metric, self.headline = metric, headline

    def best_metric(self, task: Seq2SeqConfig) -> str:
        return self.headline

    def model_class(self) -> ModelClass:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    def model_config(self, task: Seq2SeqConfig, model: PretrainedConfig) -> dict[str, Any]:
        return {}

    def label_names(self, splits: Splits, task: Seq2SeqConfig, data: DataConfig) -> list[str]:
        return []  # the vocabulary is the label set

    def bind(
        self, cfg: Seq2SeqConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> Seq2SeqTask:
        return Seq2SeqTask(self, cfg, data, labels, tokenizer, self.metric, frozen=frozen)


@dataclass
class Seq2SeqTask(GeneratingTask[Seq2SeqConfig]):
    """A text-to-text task bound to a run: an encoder-decoder writes each target from its source."""

    metric: str = "rouge"  # the bundled metric module that scores what was written

    @property
    def generation(self) -> GenerationConfig:
        return self.cfg.generation

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        task, data, tokenizer = self.cfg, self.data, self.tokenizer
        columns = {"data.text_column": data.text_column}
        if with_labels:
            columns["task.target_column"] = task.target_column
        require_columns(rows, columns, source)
        texts = [text_field(row, data.text_column, index, source) for index, row in enumerate(rows)]
        sources = [task.source_prefix + text for text in texts]
        encoded = tokenizer(sources, truncation=True, max_length=task.max_length, return_token_type_ids=False)
        features = [{key: encoded[key][i] for key in encoded} for i in range(len(rows))]
        add_notes(features, cut_rows(tokenizer, encoded, task.max_length, sources, return_token_type_ids=False),
                  [is_blank(text) for text in texts])
        if with_labels:
            targets = [text_field(row, task.target_column, index, source) for index, row in enumerate(rows)]
            ids = tokenizer(text_target=targets, truncation=True, max_length=task.max_target_length,
                            return_token_type_ids=False)["input_ids"]
            for feature, target, label_ids in zip(features, targets, ids):
                feature["labels"] = _without_start(label_ids, tokenizer)
                feature["reference"] = target
        return features

    def collator(self) -> Collate:
        from transformers import DataCollatorForSeq2Seq

        pad = DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=IGNORE_INDEX)
        return lambda features: pad([{k: v for k, v in f.items() if k not in ("reference", NOTE)} for f in features])

    def training_step(self) -> TrainingStep:
        return ModelLoss(LossUnit.tokens)

    def prompts(self, features: list[Feature]) -> list[Feature]:
        """The features' own encoder inputs: the decoder writes from them."""
        return [{k: v for k, v in f.items() if k not in (*TARGET_FIELDS, NOTE)} for f in features]

    def prompt_collator(self) -> Collate:
        return self.collator()

    def metrics(self, texts: list[str], features: list[Feature]) -> dict[str, Any]:
        from ftcli.tasks.metrics import load_metric

        references = [f["reference"] for f in features]
        return load_metric(self.metric).compute(predictions=texts, references=references)


def _without_start(ids: list[int], tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Target ids without a leading [CLS]: BERT vocabularies (warm-started encoder-decoders) put one
    first, and decoding already starts from it, so learning to write it again first only delays
    learning the text (the model writes nothing at low learning rates). BOS-style vocabularies
    (BART's `<s>`) are left as their models were trained."""
    if ids and tokenizer.bos_token_id is None and tokenizer.cls_token_id is not None and ids[0] == tokenizer.cls_token_id:
        return ids[1:]
    return ids


TASKS.register("summarization", Seq2SeqConfig)(Seq2Seq("rouge", "rougeL"))
TASKS.register("translation", Seq2SeqConfig)(Seq2Seq("bleu", "bleu"))
