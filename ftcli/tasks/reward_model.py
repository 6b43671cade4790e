"""`reward_model`: a scalar score for an answer to a prompt, learnt from pairs of a preferred and a rejected answer.

Rows hold a prompt and two answers (`ftcli.tasks.pairs`: separate columns, whole HH
conversations, lists of chat turns, or feedback rows, whose refinement is preferred to their
output), with an optional `task.margin_column`. The model is a
sequence-classification head with one output, `reward`, on any backbone. How a prompt and an
answer are written for it (`task.input`):

- `pair`: as a text pair, the way the tokenizer writes pairs (`[CLS] prompt [SEP] answer [SEP]`),
  for an encoder such as the embedded MiniLM;
- `conversation`: as `task=instruction` writes a conversation, the prompt with the tokenizer's
  chat template or the plain one, then the answer and its end-of-turn token, for a causal LM. Its
  head scores the last token that is not padding (`transformers` finds it from
  `config.pad_token_id`, which `ftcli.models.loading.sync_pad_token` sets).

`auto` picks `pair` for a tokenizer with a separator token and no chat template (an encoder's),
`conversation` otherwise. The tiny test models borrow MiniLM's tokenizer, so they read pairs
unless told otherwise.

Training runs the chosen and the rejected answers of a batch through the model in one forward
pass and minimises the Bradley–Terry loss -log σ(r_chosen − r_rejected − margin), a mean over
pairs. Evaluation reports that loss, the pairwise `accuracy` (how often the chosen answer scores
higher; it picks the best checkpoint), the `mean_margin` r_chosen − r_rejected and each side's
mean reward. `predict` scores one answer (`task.response_column`: `reward`) or a pair
(`reward_chosen`, `reward_rejected`, `prefers_chosen`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ftcli.config.schema import DataConfig, TaskConfig
from ftcli.data.readers import Row
from ftcli.data.splits import Splits
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.engine.step import Batch, Collate, Step, TrainingStep
from ftcli.errors import DataError
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.bound import BoundTask, require_fast_tokenizer
from ftcli.tasks.chat import Renderer, Template
from ftcli.tasks.notes import NOTE, RowNote, is_blank
from ftcli.tasks.pairs import PairColumns, Prompt, holds_pair, prompt_text, prompt_turns, read_answer, read_pair

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedTokenizerBase
    from transformers.generation.streamers import BaseStreamer

    from ftcli.engine.inference import Outputs
    from ftcli.models.sources import ModelClass
    from ftcli.tasks.base import Autocast

REWARD = "reward"  # the head's one output, and its label
REJECTED = "rejected_"  # in front of the rejected answer's inputs, in a pair's feature and batch
MARGIN = "margin"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class RewardInput(str, Enum):
    auto = "auto"  # pair for a tokenizer with a separator token and no chat template, else conversation
    pair = "pair"
    conversation = "conversation"


@dataclass
class RewardModelConfig(TaskConfig):
    name: str = "reward_model"
    max_length: int = 512  # tokens per prompt and answer; the prompt's beginning is cut first (`keep`)
    input: RewardInput = RewardInput.auto
    template: Template = Template.auto  # task.input=conversation: the chat template, or the plain one
    prompt_column: str = "prompt"
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    refinement_column: str = "refinement"  # rows without chosen_column (feedback rows): chosen
    output_column: str = "output"  # and their first answer: rejected
    system_column: str = "system"
    response_column: str = "response"  # predict: a single answer to score
    margin_column: Optional[str] = None  # how much more the chosen answer should score; null: no margin

    def validate(self) -> list[str]:
        problems = super().validate()
        if self.chosen_column == self.rejected_column:
            problems.append(f"task.chosen_column and task.rejected_column are both {self.chosen_column!r}; "
                            "a pair needs two columns")
        if self.refinement_column == self.output_column:
            problems.append(f"task.refinement_column and task.output_column are both {self.refinement_column!r}; "
                            "a feedback row's pair needs two columns")
        return problems

    def columns(self) -> PairColumns:
        return PairColumns(self.prompt_column, self.chosen_column, self.rejected_column, self.system_column,
                           output=self.output_column, refinement=self.refinement_column)


class RewardModel:
    """The registered kind; `bind` gives the `RewardModelTask` that encodes pairs and scores answers."""

    def best_metric(self, cfg: RewardModelConfig) -> str:
        return "accuracy"

    def model_class(self) -> ModelClass:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def model_config(self, cfg: RewardModelConfig, model_config: PretrainedConfig) -> dict[str, Any]:
        """A regression head: an exported model's `text-classification` pipeline then returns the raw
        reward, not a sigmoid of it."""
        return {"problem_type": "regression"}

    def label_names(self, splits: Splits, cfg: RewardModelConfig, data: DataConfig) -> list[str]:
        return [REWARD]

    def bind(
        self, cfg: RewardModelConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> RewardModelTask:
        return RewardModelTask(self, cfg, data, labels, tokenizer, frozen=frozen)


@dataclass(frozen=True)
class _Example:
    """One row as read: its prompt, its answers (chosen and rejected, or the one to score) and margin."""

    where: str
    prompt: Prompt
    system: str | None
    answers: tuple[str, ...]
    margin: float | None


@dataclass(frozen=True)
class _Written:
    """One prompt and answer as model inputs, and whether they were cut to fit."""

    inputs: dict[str, list[int]]
    cut: bool


class RewardModelTask(BoundTask[RewardModelConfig]):
    """A reward model bound to a run: one score per answer, trained on pairs of them."""

    @property
    def generation(self) -> None:
        return None

    def input_mode(self) -> RewardInput:
        """How prompts and answers are written: `task.input`, with `auto` decided by the tokenizer."""
        if RewardInput(self.cfg.input) is not RewardInput.auto:
            return RewardInput(self.cfg.input)
        tokenizer = self.tokenizer
        return RewardInput.pair if tokenizer.sep_token and not tokenizer.chat_template else RewardInput.conversation

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """One feature per row: the chosen answer's inputs and the rejected one's (`rejected_input_ids`, ...)
        with the row's margin, or, for a row with one answer (predict), that answer's inputs alone."""
        mode = self.input_mode()
        examples = [self._example(row, f"{source}: record {index}", with_labels, mode)
                    for index, row in enumerate(rows)]
        if mode is RewardInput.pair:
            written = as_text_pairs(self.tokenizer, examples, self.cfg.max_length)
        else:
            written = as_conversations(Renderer(self.tokenizer, self.cfg.template), examples, self.cfg.max_length)
        features = []
        for index, (example, sequences) in enumerate(zip(examples, written)):
            feature: Feature = dict(sequences[0].inputs)
            if len(sequences) == 2:
                feature.update({REJECTED + key: value for key, value in sequences[1].inputs.items()})
            if example.margin is not None:
                feature[MARGIN] = example.margin
            feature[NOTE] = RowNote(index, any(s.cut for s in sequences), any(map(is_blank, example.answers)))
            features.append(feature)
        return features

    def _example(self, row: Row, where: str, with_labels: bool, mode: RewardInput) -> _Example:
        task = self.cfg
        columns = task.columns()
        answers: tuple[str, ...]
        if with_labels or holds_pair(row, columns):
            prompt, chosen, rejected, system = read_pair(row, columns, where)
            answers = (chosen, rejected)
        else:
            prompt, answer, system = read_answer(row, columns, task.response_column, where)
            answers = (answer,)
        if _blank(prompt):
            why = (" (task.input=pair: the model reads the prompt and the answer as a text pair, as an encoder does, "
                   "and judges the answer by what it replies to)" if mode is RewardInput.pair else "")
            raise DataError(
                f"{where}: the prompt is empty{why}",
                hint=f"give every row the prompt its answers reply to ({task.prompt_column!r}, or the turns "
                "before the answers), or drop the rows without one",
            )
        margin = _margin(row, task.margin_column, where) if with_labels and task.margin_column else None
        return _Example(where, prompt, system, answers, margin)

    def collator(self) -> Collate:
        return PairCollator(self.tokenizer)

    def training_step(self) -> TrainingStep:
        return PairwiseRanking()

    def outputs(
        self, model: nn.Module, features: list[Feature], batch_size: int, autocast: Autocast,
        streamer: BaseStreamer | None = None,
    ) -> Outputs:
        """Per feature, the reward of its first answer and of its rejected one (NaN for a single answer),
        and the mean Bradley–Terry loss of the pairs. Every answer is scored on its own, longest first."""
        from ftcli.engine.inference import Outputs, run_inference

        if not features:
            return Outputs(np.zeros((0, 2)), None)
        pairs = [i for i, f in enumerate(features) if REJECTED + "input_ids" in f]
        sequences = [_inputs(f, "") for f in features] + [_inputs(features[i], REJECTED) for i in pairs]
        scored = np.asarray(run_inference(model, sequences, self._pad, batch_size, autocast).logits)[:, 0]
        rewards = np.full((len(features), 2), np.nan, dtype=np.float64)
        rewards[:, 0] = scored[: len(features)]
        rewards[pairs, 1] = scored[len(features):]
        loss = None
        if pairs:
            margins = np.array([features[i].get(MARGIN, 0.0) for i in pairs], dtype=np.float64)
            loss = pair_loss(rewards[pairs, 0], rewards[pairs, 1], margins)
        return Outputs(rewards, loss)

    def _pad(self, features: list[Feature]) -> Batch:
        return self.tokenizer.pad(features, padding=True, padding_side="right", return_tensors="pt")

    def scores(self, outputs: Outputs, features: list[Feature]) -> dict[str, Any]:
        rewards = np.asarray(outputs.logits)
        paired = ~np.isnan(rewards[:, 1]) if len(rewards) else np.zeros(0, dtype=bool)
        return {"loss": outputs.loss, **ranking_metrics(rewards[paired, 0], rewards[paired, 1])}

    def prediction_fields(self) -> tuple[str, ...]:
        return (REWARD, "reward_chosen", "reward_rejected", "prefers_chosen")

    def predictions(self, outputs: Outputs, features: list[Feature]) -> list[dict[str, Any]]:
        rewards = np.asarray(outputs.logits)
        predictions: list[dict[str, Any]] = []
        for chosen, rejected in rewards:
            if np.isnan(rejected):
                predictions.append({REWARD: round(float(chosen), 6)})
            else:
                predictions.append({"reward_chosen": round(float(chosen), 6),
                                    "reward_rejected": round(float(rejected), 6),
                                    "prefers_chosen": bool(chosen > rejected)})
        return predictions


def as_text_pairs(
    tokenizer: PreTrainedTokenizerBase, examples: list[_Example], max_length: int
) -> list[list[_Written]]:
    """Each example's answers, each as a text pair with its prompt, cut to `max_length` tokens (`keep`).

    The tokenizer writes each pair whole, with its own special tokens; which of its tokens are the
    prompt's and which the answer's is read from the encoding (so this needs a fast tokenizer).
    """
    require_fast_tokenizer(tokenizer, "reward_model",
                           "with task.input=pair, to tell a prompt's tokens from its answer's")
    if not examples:
        return []
    prompts = [prompt_text(e.prompt, e.system) for e in examples]
    encoded = tokenizer([p for p, e in zip(prompts, examples) for _ in e.answers],
                        [answer for e in examples for answer in e.answers])
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    written, position = [], 0
    for example in examples:
        sequences = []
        for _ in example.answers:
            sides = encoded.sequence_ids(position)
            prompt = [j for j, side in enumerate(sides) if side == 0]
            answer = [j for j, side in enumerate(sides) if side == 1]
            _require_room(len(prompt), max_length, example.where)
            kept_prompt, kept_answer = keep(len(prompt), len(answer), room)
            dropped = set(prompt[: len(prompt) - kept_prompt]) | set(answer[kept_answer:])
            inputs = {key: [v for j, v in enumerate(encoded[key][position]) if j not in dropped]
                      for key in encoded.keys()}
            sequences.append(_Written(inputs, bool(dropped)))
            position += 1
        written.append(sequences)
    return written


def as_conversations(renderer: Renderer, examples: list[_Example], max_length: int) -> list[list[_Written]]:
    """Each example's answers, each as the last assistant turn of its conversation, cut to `max_length`
    tokens (`keep`); everything before the answer's own tokens counts as prompt."""
    written = []
    for example in examples:
        turns = prompt_turns(example.prompt, example.system)
        sequences = []
        for answer in example.answers:
            segments = renderer.segments([*turns, {"role": "assistant", "content": answer}], example.where)
            prompt = [i for segment in segments[:-1] for i in segment.ids]
            reply = segments[-1].ids
            _require_room(len(prompt), max_length, example.where)
            kept_prompt, kept_answer = keep(len(prompt), len(reply), max_length)
            ids = prompt[len(prompt) - kept_prompt:] + reply[:kept_answer]
            cut = kept_prompt < len(prompt) or kept_answer < len(reply)
            sequences.append(_Written({"input_ids": ids, "attention_mask": [1] * len(ids)}, cut))
        written.append(sequences)
    return written


def keep(prompt: int, answer: int, room: int) -> tuple[int, int]:
    """How many of a prompt's last tokens and of its answer's first tokens fit in `room` tokens.

    The prompt gives way first, from its beginning, so the answer (what is scored) stays whole;
    it keeps at least half the room, though (all of itself if shorter), and past that the
    answer's end is cut: an answer read without its question cannot be judged either.
    """
    room = max(room, 0)
    if prompt + answer <= room:
        return prompt, answer
    kept_prompt = max(room - answer, min(prompt, room // 2))
    return kept_prompt, room - kept_prompt


def _require_room(prompt_tokens: int, max_length: int, where: str) -> None:
    if prompt_tokens > max_length:
        raise DataError(
            f"{where}: the prompt alone is {prompt_tokens} tokens, more than task.max_length={max_length}, "
            "which leaves no room for the answer",
            hint="raise task.max_length (within what the model takes), or shorten or drop the row",
        )


class PairCollator:
    """Pads a batch of pairs: the chosen answers' inputs as `input_ids`, ..., the rejected ones' as
    `rejected_input_ids`, ..., all to one length (so one forward pass takes both), and `margin`.

    Padding goes on the right whatever the tokenizer's side: GPT-2-like models count positions
    from the first token, and the head reads the last token that is not padding either way.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    def __call__(self, features: list[Feature]) -> Batch:
        import torch

        sequences = [_inputs(f, "") for f in features] + [_inputs(f, REJECTED) for f in features]
        padded = self.tokenizer.pad(sequences, padding=True, padding_side="right", return_tensors="pt")
        n = len(features)
        batch = {key: padded[key][:n] for key in padded.keys()}
        batch.update({REJECTED + key: padded[key][n:] for key in padded.keys()})
        if MARGIN in features[0]:
            batch[MARGIN] = torch.tensor([f[MARGIN] for f in features], dtype=torch.float32)
        return batch


class PairwiseRanking(Step):
    """The Bradley–Terry loss of a batch of pairs, a mean over its pairs, and the training pairs'
    accuracy and mean margin since the last log record."""

    def __init__(self) -> None:
        self.accelerator: Accelerator | None = None
        self.seen: torch.Tensor | None = None  # since the last log: pairs ranked right, sum of margins, pairs

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        self.accelerator = accelerator

    def units(self, batch: Batch) -> torch.Tensor:
        import torch

        return torch.tensor(len(batch["input_ids"]), device=batch["input_ids"].device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        from ftcli.tasks.preference_losses import bradley_terry

        chosen, rejected = pair_rewards(model, batch)
        self._count(chosen.detach(), rejected.detach())
        return bradley_terry(chosen, rejected, batch.get(MARGIN)).mean()

    def _count(self, chosen: torch.Tensor, rejected: torch.Tensor) -> None:
        import torch

        counts = torch.stack([(chosen > rejected).sum().float(), (chosen - rejected).sum(),
                              torch.tensor(float(len(chosen)), device=chosen.device)])
        self.seen = counts if self.seen is None else self.seen + counts

    def logged(self) -> dict[str, float]:
        if self.seen is None:
            return {}
        seen, self.seen = self.seen, None
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            seen = self.accelerator.reduce(seen, reduction="sum")
        right, margins, pairs = seen.tolist()
        return {"accuracy": right / pairs, "mean_margin": margins / pairs}


def pair_rewards(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The rewards of a batch's chosen and rejected answers, from one forward pass over both."""
    import torch

    n = len(batch["input_ids"])
    inputs = {key: torch.cat([batch[key], batch[REJECTED + key]]) for key in MODEL_INPUTS if key in batch}
    rewards = model(**inputs).logits[:, 0].float()
    return rewards[:n], rewards[n:]


def pair_loss(chosen: np.ndarray, rejected: np.ndarray, margins: np.ndarray) -> float:
    """The mean Bradley–Terry loss of pairs of rewards, as training computes it."""
    import torch

    from ftcli.tasks.preference_losses import bradley_terry

    as_tensor = torch.from_numpy
    return float(bradley_terry(as_tensor(chosen), as_tensor(rejected), as_tensor(margins)).mean())


def ranking_metrics(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """How often the chosen answer scores higher than the rejected one, by how much, and each side's mean."""
    if not len(chosen):
        return {"accuracy": 0.0, "mean_margin": 0.0, "mean_chosen_reward": 0.0, "mean_rejected_reward": 0.0}
    return {
        "accuracy": float(np.mean(chosen > rejected)),
        "mean_margin": float(np.mean(chosen - rejected)),
        "mean_chosen_reward": float(np.mean(chosen)),
        "mean_rejected_reward": float(np.mean(rejected)),
    }


def _inputs(feature: Feature, prefix: str) -> dict[str, Any]:
    """The model inputs of one answer of a feature: the first's (no prefix) or the rejected one's."""
    return {key: feature[prefix + key] for key in MODEL_INPUTS if prefix + key in feature}


def _blank(prompt: Prompt) -> bool:
    if isinstance(prompt, str):
        return is_blank(prompt)
    return all(is_blank(turn["content"]) for turn in prompt)


def _margin(row: Row, column: str, where: str) -> float:
    value = row.get(column)
    try:
        number = float(value)  # type: ignore[arg-type]  # anything else is the DataError below
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        found = f"{column}={value!r}" if column in row else f"no {column!r}"
        raise DataError(
            f"{where}: has {found}; task.margin_column needs a finite number per pair",
            hint="fix the row, or set task.margin_column=null to train without margins",
        )
    return number


TASKS.register("reward_model", RewardModelConfig)(RewardModel())
