"""`grpo`: online reinforcement learning of a causal language model with group-relative advantages.

Each training step samples `task.num_generations` answers to every prompt of its batch, scores them
with the reward functions of `task.rewards` (`ftcli.tasks.rewards`), and moves the model towards the
answers that scored above their group's mean, held near the model it started from by a KL term of
weight `task.beta` (`ftcli.tasks.grpo_step`). Nothing is learnt from a reference text: rows hold a
prompt, and whatever columns the rewards read (`answer`, GSM8K style "... #### 42", for the default
`exact_answer`).

Prompts are read and written as `task=instruction` reads and writes them: chat `messages`, Alpaca
`instruction`/`input` or a `prompt` column (`ftcli.tasks.chat`), in the tokenizer's chat template or
the plain one, cut to their last `task.max_length` tokens. A trailing assistant turn is no part of
the prompt.

Evaluation writes one greedy answer per prompt (`task.generation`) and reports the mean total
reward (`reward`, the best checkpoint's metric), each function's mean (`reward/<name>`) and the
mean answer length in tokens (`mean_length`); there is no loss to report (`loss` is null).
`predict` writes `generated`, and `reward` on the rows that hold every column the rewards read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import DataConfig, GenerationConfig, TaskConfig
from ftcli.data.readers import Row
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.engine.step import Collate, TrainingStep
from ftcli.errors import DataError
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.chat import Columns, Renderer, RowFormat, Template, conversation
from ftcli.tasks.generating import GENERATED, GeneratingTask
from ftcli.tasks.grpo_step import PROMPTS, GrpoStep, Prompt, Sampling
from ftcli.tasks.notes import NOTE, RowNote, is_blank
from ftcli.tasks.policy import PolicyKind
from ftcli.tasks.rewards import RewardConfig, RewardContext, Rewards

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


REWARD = "reward"  # the field `predict` writes a row's total reward to
PROMPT = "grpo_prompt"  # the feature key holding the row's `Prompt`
# instruction's names for the answer columns: a row's trailing assistant turn is read, then left out
OUTPUT_COLUMN, RESPONSE_COLUMN = "output", "response"


def _default_rewards() -> list[RewardConfig]:
    return [RewardConfig(name="exact_answer")]


@dataclass
class GrpoConfig(TaskConfig):
    name: str = "grpo"
    max_length: int = 256  # prompt tokens; a longer prompt keeps its end
    format: RowFormat = RowFormat.auto
    template: Template = Template.auto
    messages_column: str = "messages"
    instruction_column: str = "instruction"
    input_column: str = "input"
    prompt_column: str = "prompt"
    system_prompt: str = ""  # a system turn for rows that have none
    num_generations: int = 4  # completions sampled per prompt: the group its advantages are relative to
    beta: float = 0.04  # weight of the KL term to the reference model; 0: no reference pass at all
    rewards: list[RewardConfig] = field(default_factory=_default_rewards)
    max_new_tokens: int = 64  # completion tokens sampled in training; GSM8K-length reasoning wants 256 or more
    temperature: float = 1.0  # sampling in training
    top_p: float = 1.0  # sampling in training: nucleus size
    scale_rewards: bool = True  # divide advantages by their group's reward standard deviation
    generation: GenerationConfig = field(default_factory=GenerationConfig)  # eval and predict: greedy

    def validate(self) -> list[str]:
        problems = super().validate() + self.generation.validate()
        if self.num_generations < 2:
            problems.append(f"task.num_generations={self.num_generations} must be at least 2: advantages are "
                            "relative to the other completions of the same prompt")
        if self.beta < 0:
            problems.append(f"task.beta={self.beta} must be 0 (no KL term) or positive")
        if not self.rewards:
            problems.append("task.rewards is empty; give at least one, e.g. task.rewards=[{name:exact_answer}]")
        if self.max_new_tokens < 1:
            problems.append(f"task.max_new_tokens={self.max_new_tokens} must be at least 1")
        if self.temperature <= 0:
            problems.append(f"task.temperature={self.temperature} must be positive")
        if not 0 < self.top_p <= 1:
            problems.append(f"task.top_p={self.top_p} must be in (0, 1]")
        return problems

    def sampling(self) -> Sampling:
        return Sampling(self.num_generations, self.beta, self.max_new_tokens, self.temperature, self.top_p,
                        self.scale_rewards)


class Grpo(PolicyKind[GrpoConfig]):
    """The registered kind; `bind` gives the `GrpoTask` that encodes prompts, trains, generates and scores."""

    def best_metric(self, task: GrpoConfig) -> str:
        return REWARD

    def bind(
        self, cfg: GrpoConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> GrpoTask:
        return GrpoTask(self, cfg, data, labels, tokenizer, frozen=frozen)


class GrpoTask(GeneratingTask[GrpoConfig]):
    """GRPO bound to a run: prompts in, sampled answers scored by rewards, the policy gradient out."""

    @property
    def generation(self) -> GenerationConfig:
        return self.cfg.generation

    @cached_property
    def rewards(self) -> Rewards:
        """The configured reward functions, built for this run's tokenizer and frozen models."""
        return Rewards(self.cfg.rewards, RewardContext(self.tokenizer, self.frozen))

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """One feature per row: the prompt's token ids and its `Prompt` (text and source row).

        Training and evaluation rows must hold every column the rewards read; `predict` rows need
        not, and only those that do are scored.
        """
        task, data = self.cfg, self.data
        renderer = Renderer(self.tokenizer, task.template)
        columns = Columns(task.messages_column, task.instruction_column, task.input_column, OUTPUT_COLUMN,
                          task.prompt_column, RESPONSE_COLUMN, data.text_column)
        needed = self.rewards.columns()
        features: list[Feature] = []
        for index, row in enumerate(rows):
            where = f"{source}: record {index}"
            missing = [c for c in needed if row.get(c) is None]
            if with_labels and missing:
                raise DataError(
                    f"{where}: has no {', '.join(map(repr, missing))}, which task.rewards read",
                    hint="set task.rewards[i].column to the column holding the reference answer",
                )
            turns = conversation(row, task.format, columns, task.system_prompt, where)
            context = turns[:-1] if turns[-1]["role"] == "assistant" and len(turns) > 1 else turns
            ids = renderer.prompt(context)
            users = [turn["content"] for turn in context if turn["role"] == "user"]
            features.append({
                "input_ids": ids[-task.max_length:],
                PROMPT: Prompt(users[-1] if users else "", row),
                NOTE: RowNote(index, len(ids) > task.max_length, all(is_blank(u) for u in users)),
            })
        return features

    def collator(self) -> Collate:
        """Left-padded prompts, and their `Prompt`s under `PROMPTS` for the rewards."""
        pad = self.prompt_collator()

        def collate(features: list[Feature]) -> Any:
            # the one entry of a batch that is no tensor; `accelerate` moves batches to the device
            # entry by entry and passes it on as it is
            batch: dict[str, Any] = dict(pad(features))
            batch[PROMPTS] = [f[PROMPT] for f in features]
            return batch

        return collate

    def training_step(self) -> TrainingStep:
        return GrpoStep(self.cfg.sampling(), self.rewards, self.tokenizer, self.stop_ids(), self.frozen)

    def stop_ids(self) -> list[int]:
        """Where answers end: the end of an assistant turn in the template the run writes prompts with."""
        return Renderer(self.tokenizer, self.cfg.template).stop_ids()

    def prompts(self, features: list[Feature]) -> list[Feature]:
        return [{"input_ids": f["input_ids"]} for f in features]

    def prompt_collator(self) -> Collate:
        """Left padding, so every prompt in a batch ends where generation begins."""
        tokenizer = self.tokenizer
        return lambda features: tokenizer.pad([{"input_ids": f["input_ids"]} for f in features], padding=True,
                                              padding_side="left", return_tensors="pt")

    def metrics(self, texts: list[str], features: list[Feature]) -> dict[str, Any]:
        """The mean total reward of the answers, each function's mean, and their mean length in tokens."""
        prompts: list[Prompt] = [f[PROMPT] for f in features]
        scored = self.rewards.score(texts, [p.text for p in prompts], [p.row for p in prompts])
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
        return {
            REWARD: _mean(scored.total),
            **{f"reward/{label}": _mean(scores) for label, scores in scored.parts.items()},
            "mean_length": _mean(lengths),
        }

    def predictions(self, outputs: Any, features: list[Feature]) -> list[dict[str, Any]]:
        """The generated answer of each row, and its total reward when the row holds what the rewards read."""
        texts: list[str] = outputs.texts or []
        needed = self.rewards.columns()
        scored = [i for i, f in enumerate(features) if all(f[PROMPT].row.get(c) is not None for c in needed)]
        rewards = self.rewards.score([texts[i] for i in scored], [features[i][PROMPT].text for i in scored],
                                     [features[i][PROMPT].row for i in scored]).total if scored else []
        by_row = dict(zip(scored, rewards))
        return [{GENERATED: text, **({REWARD: by_row[i]} if i in by_row else {})} for i, text in enumerate(texts)]

    def prediction_fields(self) -> tuple[str, ...]:
        return (GENERATED, REWARD)


def _mean(values: list[float] | list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


TASKS.register("grpo", GrpoConfig)(Grpo())
