"""`instruction`: supervised fine-tuning of a causal language model on prompt → response pairs.

Rows are chat `messages`, Alpaca `instruction`/`input`/`output`, or `prompt`/`response`
(`tasks/chat.py`), written with the tokenizer's chat template or a documented plain one. The
loss covers the response tokens only (`task.train_on_prompt=true` includes the prompt).
`task.packing=true` trains padding-free: each batch is one row of concatenated examples whose
position ids restart at every example, which `transformers` turns into a block-diagonal
attention mask, so no example attends to another.

Evaluation reports the teacher-forced loss and perplexity over response tokens, and, with
`task.generate_in_eval` (the default), generates an answer for every prompt and scores it
against the reference: exact match (ignoring case and whitespace) and ROUGE-1/2/L. `predict` generates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import DataConfig
from ftcli.data.readers import Row
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.engine.step import IGNORE_INDEX
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.chat import Columns, Renderer, RowFormat, Segment, conversation
from ftcli.tasks.notes import NOTE, RowNote, is_blank
from ftcli.tasks.responses import ResponseConfig, ResponseKind, ResponseTask

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass
class InstructionConfig(ResponseConfig):
    name: str = "instruction"
    max_length: int = 1024  # prompt + response tokens; see `fit` for what is cut
    format: RowFormat = RowFormat.auto
    messages_column: str = "messages"
    instruction_column: str = "instruction"
    input_column: str = "input"
    output_column: str = "output"
    prompt_column: str = "prompt"
    response_column: str = "response"
    system_prompt: str = ""  # a system turn for rows that have none
    train_on_prompt: bool = False


class Instruction(ResponseKind[InstructionConfig]):
    """The registered kind; `bind` gives the `InstructionTask` that encodes, generates and scores."""

    def best_metric(self, task: InstructionConfig) -> str:
        return "rougeL" if task.generate_in_eval else "perplexity"

    def bind(
        self, cfg: InstructionConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> InstructionTask:
        return InstructionTask(self, cfg, data, labels, tokenizer, frozen=frozen)


class InstructionTask(ResponseTask[InstructionConfig]):
    """Instruction tuning bound to a run: a causal LM learns each response, and continues each prompt."""

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """One feature per row: the full sequence with its loss mask, and the prompt to generate from.

        Without labels (predict) the whole conversation is the prompt; with labels the last
        assistant turn is the reference the generated answer is scored against.
        """
        task, data = self.cfg, self.data
        renderer = Renderer(self.tokenizer, task.template)
        columns = Columns(
            task.messages_column, task.instruction_column, task.input_column, task.output_column,
            task.prompt_column, task.response_column, data.text_column,
        )
        features, cut = [], 0
        for index, row in enumerate(rows):
            where = f"{source}: record {index}"
            turns = conversation(row, task.format, columns, task.system_prompt, where)
            if not with_labels:
                context = turns[:-1] if turns[-1]["role"] == "assistant" else turns
                prompt = renderer.prompt(context)
                empty = all(is_blank(turn["content"]) for turn in context if turn["role"] == "user")
                features.append({"input_ids": tail(prompt, task.max_length),
                                 NOTE: RowNote(index, len(prompt) > task.max_length, empty)})
                continue
            segments = renderer.segments(turns, where)
            ids, mask = fit(segments, task.max_length)
            cut += sum(len(s.ids) for s in segments) > task.max_length
            context = turns[:-1] if turns[-1]["role"] == "assistant" else turns
            features.append({
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "labels": ids if task.train_on_prompt else trained_labels(ids, mask),
                "prompt_ids": tail(renderer.prompt(context), task.max_length),
                "reference": turns[-1]["content"] if turns[-1]["role"] == "assistant" else "",
            })
        if cut:
            log.warning("%s: %d of %d rows are longer than task.max_length=%d tokens and were cut",
                        source, cut, len(rows), task.max_length)
        return features

    def metrics(self, texts: list[str], features: list[Feature]) -> dict[str, Any]:
        from ftcli.tasks.metrics import load_metric

        references = [f["reference"] for f in features]
        scores = load_metric("rouge").compute(predictions=texts, references=references)
        matches = [normalise(p) == normalise(r) for p, r in zip(texts, references)]
        return {"exact_match": sum(matches) / len(matches) if matches else 0.0, **scores}


def trained_labels(ids: list[int], mask: list[bool]) -> list[int]:
    """The labels of a sequence: its ids where `mask` trains them, IGNORE_INDEX elsewhere."""
    return [i if m else IGNORE_INDEX for i, m in zip(ids, mask)]


def fit(segments: list[Segment], max_length: int) -> tuple[list[int], list[bool]]:
    """The segments joined and cut to `max_length` tokens, with which tokens are trained.

    The end is cut first. When that would leave no trained token (a prompt longer than the
    budget), the prompt's beginning is cut instead, keeping up to half the budget for the
    response, so every example still trains on something.
    """
    ids = [i for s in segments for i in s.ids]
    mask = [s.trained for s in segments for _ in s.ids]
    if len(ids) <= max_length:
        return ids, mask
    if any(mask[:max_length]):
        return ids[:max_length], mask[:max_length]
    first = mask.index(True)
    run = next((j for j in range(first, len(mask)) if not mask[j]), len(mask)) - first
    start = first + min(run, max(1, max_length // 2)) - max_length
    return ids[start : start + max_length], mask[start : start + max_length]


def tail(ids: list[int], max_length: int) -> list[int]:
    """The last `max_length` tokens of a prompt: the end, next to the answer, matters most."""
    return ids[-max_length:]


def normalise(text: str) -> str:
    """Exact match ignores case and surrounding or repeated whitespace, nothing else
    (uncased tokenizers cannot write capitals back)."""
    return " ".join(text.lower().split())


TASKS.register("instruction", InstructionConfig)(Instruction())
