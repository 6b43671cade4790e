"""Text-to-text tasks on encoder-decoder models: `summarization` and `translation`.

Each row has a source text (`data.text_column`) and a target (`task.target_column`); the
source gets `task.source_prefix` (T5 expects one: "summarize: ", "translate English to German: ").
Training is teacher-forced cross-entropy on the target; evaluation and `predict` generate with
the settings under `task.generation` and score what was written: ROUGE-1/2/L/Lsum for
summarisation, BLEU and chrF for translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftcli.config.schema import DataConfig, TaskConfig
from ftcli.data import require_columns, text_field
from ftcli.readers import Row
from ftcli.tasks.base import TASKS
from ftcli.tasks.notes import NOTE, add_notes, cut_rows, is_blank


@dataclass
class GenerationConfig:
    """How generation tasks write: greedy by default, so evaluation is deterministic."""

    num_beams: int = 1  # 1: greedy
    max_new_tokens: int = 64
    length_penalty: float = 1.0  # beam search: >1 favours longer outputs
    no_repeat_ngram_size: int = 0  # 0: off
    repetition_penalty: float = 1.0  # >1 discourages repeating tokens already written
    do_sample: bool = False  # sample instead of taking the likeliest token (seeded by the run's seed)
    temperature: float = 1.0  # sampling only
    top_p: float = 1.0  # sampling only: nucleus size

    def validate(self) -> list[str]:
        problems = []
        if self.num_beams < 1:
            problems.append(f"task.generation.num_beams={self.num_beams} must be at least 1")
        if self.max_new_tokens < 1:
            problems.append(f"task.generation.max_new_tokens={self.max_new_tokens} must be at least 1")
        if self.temperature <= 0:
            problems.append(f"task.generation.temperature={self.temperature} must be positive (do_sample=false for greedy)")
        if not 0 < self.top_p <= 1:
            problems.append(f"task.generation.top_p={self.top_p} must be in (0, 1]")
        if self.repetition_penalty <= 0:
            problems.append(f"task.generation.repetition_penalty={self.repetition_penalty} must be positive")
        return problems

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                                  "do_sample": self.do_sample}
        if self.num_beams > 1:
            kwargs.update(length_penalty=self.length_penalty, early_stopping=True)
        if self.no_repeat_ngram_size:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


@dataclass
class Seq2SeqConfig(TaskConfig):
    name: str = "summarization"
    max_length: int = 512  # source tokens; longer sources are truncated
    max_target_length: int = 128  # target tokens for training; longer targets are truncated
    target_column: str = "target"
    source_prefix: str = ""
    generation: GenerationConfig = field(default_factory=GenerationConfig)


class Seq2Seq:
    """One implementation for both tasks; `scores` names the bundled metric module they differ in."""

    generates = True

    def __init__(self, scores: str, headline: str) -> None:
        self.scores, self.headline = scores, headline

    def best_metric(self, task: Seq2SeqConfig) -> str:
        return self.headline

    def model_class(self) -> type:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    def model_config(self, task: Seq2SeqConfig, model: Any) -> dict[str, Any]:
        return {}

    def label_names(self, splits: Any, task: Seq2SeqConfig, data: DataConfig) -> list[str]:
        return []  # the vocabulary is the label set

    def encode(
        self,
        rows: list[Row],
        tokenizer: Any,
        task: Seq2SeqConfig,
        data: DataConfig,
        labels: list[str],
        source: str,
        with_labels: bool = True,
    ) -> list[dict[str, Any]]:
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

    def collator(self, tokenizer: Any, task: Seq2SeqConfig) -> Any:
        from transformers import DataCollatorForSeq2Seq

        pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
        return lambda features: pad([{k: v for k, v in f.items() if k not in ("reference", NOTE)} for f in features])

    def metrics(self, generated: list[str], features: list[dict[str, Any]], task: Seq2SeqConfig,
                labels: list[str]) -> dict[str, Any]:
        from ftcli.metrics import load_metric

        references = [f["reference"] for f in features]
        return load_metric(self.scores).compute(predictions=generated, references=references)

    def predictions(self, generated: list[str], features: list[dict[str, Any]], task: Seq2SeqConfig,
                    labels: list[str]) -> list[dict[str, Any]]:
        return [{"generated": text} for text in generated]

    def prediction_fields(self, task: Seq2SeqConfig) -> tuple[str, ...]:
        return ("generated",)


def _without_start(ids: list[int], tokenizer: Any) -> list[int]:
    """Target ids without a leading [CLS]: BERT vocabularies (warm-started encoder-decoders) put one
    first, and decoding already starts from it, so learning to write it again first only delays
    learning the text (the model writes nothing at low learning rates). BOS-style vocabularies
    (BART's `<s>`) are left as their models were trained."""
    if ids and tokenizer.bos_token_id is None and tokenizer.cls_token_id is not None and ids[0] == tokenizer.cls_token_id:
        return ids[1:]
    return ids


TASKS.register("summarization", Seq2SeqConfig)(Seq2Seq("rouge", "rougeL"))
TASKS.register("translation", Seq2SeqConfig)(Seq2Seq("bleu", "bleu"))
