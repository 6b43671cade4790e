"""Reward functions: what online RL (`task=grpo`) scores each written completion with.

A reward function is registered by name in `REWARDS` and configured by one `RewardConfig` in
`task.rewards`; several add up, each with its `weight`:

    exact_answer  1.0 when the completion's final answer equals the reference's (GSM8K "#### 42"), else 0.0
    regex         1.0 when `pattern` occurs in the completion (`re.search`), else 0.0
    length        -|n - target| / target, n the completion's length in `unit`s (tokens or words):
                  0 at the target, -1 at none or at twice the target
    reward_model  the score a finished `task=reward_model` run gives the (prompt, completion) pair

Each registered kind says which settings it needs (`problems`, checked with the config before any
model loads), which source-row columns it reads (`columns`), and builds the function that scores a
batch (`build`). Those functions see the completions' texts, their prompts' texts (the last user
turn) and the source rows, so a reward can read any column, not only the reference answer.

This module imports neither torch nor transformers: the config check looks reward names up in
`REWARDS`, and composing a config stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol

from omegaconf import MISSING

from ftcli.registry import Registry, did_you_mean

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ftcli.data.readers import Row
    from ftcli.engine.frozen import FrozenModels

ANSWER_MARK = "####"  # GSM8K's marker before a solution's final answer
# a number as written in text: 1,234.5, -3, .5; a minus sign only where it cannot be a hyphen ("3-4" is 3 and 4)
NUMBER = re.compile(r"(?:(?<![\w.])-)?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")


class LengthUnit(str, Enum):
    tokens = "tokens"  # the run's tokenizer's tokens of the completion text
    words = "words"  # whitespace-separated words


@dataclass
class RewardConfig:
    """One entry of `task.rewards`: a registered reward function, its weight, and its own settings.

    Only the settings the named function reads matter (`pattern` for `regex`, `target` and `unit`
    for `length`, `column` for `exact_answer`, `run_dir` for `reward_model`).
    """

    name: str = MISSING
    weight: float = 1.0  # the total reward is the weighted sum of every entry's
    pattern: Optional[str] = None  # regex: a Python regular expression searched for in the completion
    target: Optional[int] = None  # length: the length that scores 0 (the best)
    unit: LengthUnit = LengthUnit.tokens  # length: what `target` counts
    column: str = "answer"  # exact_answer: the source-row column holding the reference solution
    run_dir: Optional[str] = None  # reward_model: a finished task=reward_model run directory

    def __post_init__(self) -> None:
        # a local run directory as an absolute path, so the run's saved config works from any
        # directory (as `train` does for data files)
        if self.run_dir and Path(self.run_dir).expanduser().is_dir():
            self.run_dir = str(Path(self.run_dir).expanduser().resolve())


class RewardFunction(Protocol):
    """Scores a batch of completions, one float each, in order."""

    def __call__(self, completions: Sequence[str], prompts: Sequence[str], rows: Sequence[Row]) -> list[float]:
        """`completions[i]` was written for `prompts[i]` (the last user turn's text), which comes from `rows[i]`."""


@dataclass(frozen=True)
class RewardContext:
    """What building a reward function may need from the run: its tokenizer (lengths in tokens) and its
    frozen models (a reward model's scorer, `FrozenModels.scorer`)."""

    tokenizer: PreTrainedTokenizerBase
    frozen: FrozenModels


class RewardKind(Protocol):
    """A registered reward function, before it is built for a run."""

    def problems(self, cfg: RewardConfig, where: str) -> list[str]:
        """What is missing or wrong in the settings this function reads; `where` names the entry
        (`task.rewards[1]`)."""

    def columns(self, cfg: RewardConfig) -> tuple[str, ...]:
        """The source-row columns the function reads: training rows must hold them, and `predict`
        scores only the rows that do."""

    def build(self, cfg: RewardConfig, context: RewardContext) -> RewardFunction:
        """The function that scores completions with these settings."""


REWARDS: Registry[RewardKind] = Registry("reward function")
"""Every reward function by name (`task.rewards[i].name`)."""


def reward_problems(rewards: Sequence[RewardConfig], where: str = "task.rewards") -> list[str]:
    """Unregistered names (with the closest registered one) and each function's own problems."""
    problems = []
    for i, cfg in enumerate(rewards):
        at = f"{where}[{i}]"
        if cfg.name not in REWARDS:
            names = REWARDS.names()
            problems.append(f"{at}.name={cfg.name!r} is not a registered reward function"
                            f"{did_you_mean(cfg.name, names)}; choose one of: {', '.join(names)}")
        else:
            problems += REWARDS.get(cfg.name).impl.problems(cfg, at)
    return problems


def reward_labels(rewards: Sequence[RewardConfig]) -> list[str]:
    """Each entry's name in metrics and logs (`reward/<label>`): its function's name, numbered from
    the second use of the same function on (`regex`, `regex_2`)."""
    seen: dict[str, int] = {}
    labels = []
    for cfg in rewards:
        seen[cfg.name] = seen.get(cfg.name, 0) + 1
        labels.append(cfg.name if seen[cfg.name] == 1 else f"{cfg.name}_{seen[cfg.name]}")
    return labels


@dataclass(frozen=True)
class Scored:
    """A batch's rewards: the weighted total per completion, and each entry's own scores by label."""

    total: list[float]
    parts: dict[str, list[float]]


@dataclass
class Rewards:
    """Every configured reward function, built for a run: `score` gives the weighted sum.

    The functions are built when first used, so a reward model is only loaded by a run that scores.
    """

    configs: Sequence[RewardConfig]
    context: RewardContext
    _built: list[RewardFunction] | None = field(default=None, repr=False)

    @property
    def labels(self) -> list[str]:
        return reward_labels(self.configs)

    def columns(self) -> tuple[str, ...]:
        """The source-row columns any of the functions reads."""
        return tuple(dict.fromkeys(c for cfg in self.configs for c in REWARDS.get(cfg.name).impl.columns(cfg)))

    def score(self, completions: Sequence[str], prompts: Sequence[str], rows: Sequence[Row]) -> Scored:
        if self._built is None:
            self._built = [REWARDS.get(cfg.name).impl.build(cfg, self.context) for cfg in self.configs]
        total = [0.0] * len(completions)
        parts = {}
        for label, cfg, function in zip(self.labels, self.configs, self._built):
            scores = [float(s) for s in function(completions, prompts, rows)]
            if len(scores) != len(completions):
                raise ValueError(f"reward {label} gave {len(scores)} scores for {len(completions)} completions")
            parts[label] = scores
            total = [t + cfg.weight * s for t, s in zip(total, scores)]
        return Scored(total, parts)


# exact_answer


def final_answer(text: str) -> str:
    """The final answer a solution states: the number after its first "####" (the text there when it
    holds no number), else its last number, else the whole text; normalised (`normalise_answer`)."""
    if ANSWER_MARK in text:
        after = text.split(ANSWER_MARK, 1)[1].strip()
        found = NUMBER.search(after)
        return normalise_answer(found.group() if found else after.split("\n", 1)[0])
    numbers = NUMBER.findall(text)
    return normalise_answer(numbers[-1] if numbers else text)


def reference_answer(reference: str) -> str:
    """What a completion must answer: the number after the reference's "####" (GSM8K), or the whole
    reference when it has no "####"; normalised."""
    if ANSWER_MARK not in reference:
        return normalise_answer(reference)
    return final_answer(reference)


def normalise_answer(answer: str) -> str:
    """A number without thousands separators or a zero fraction ("1,000.0" → "1000", "2.50" → "2.5");
    text lowercased with its whitespace collapsed and a final full stop dropped."""
    text = " ".join(answer.strip().split()).removesuffix(".")
    number = text.replace(",", "")
    if NUMBER.fullmatch(number):
        try:
            value = Decimal(number)
        except InvalidOperation:
            return text.lower()
        if value == value.to_integral_value():
            return str(int(value))
        return str(value.normalize())
    return text.lower()


class ExactAnswer:
    """1.0 when the completion's final answer equals the reference's (`column` of the source row)."""

    def problems(self, cfg: RewardConfig, where: str) -> list[str]:
        return [] if cfg.column.strip() else [f"{where}.column is empty; name the column holding the reference answer"]

    def columns(self, cfg: RewardConfig) -> tuple[str, ...]:
        return (cfg.column,)

    def build(self, cfg: RewardConfig, context: RewardContext) -> RewardFunction:
        def score(completions: Sequence[str], prompts: Sequence[str], rows: Sequence[Row]) -> list[float]:
            return [float(final_answer(c) == reference_answer(str(r[cfg.column]))) for c, r in zip(completions, rows)]

        return score


# regex


class Pattern:
    """1.0 when `pattern` occurs anywhere in the completion (`re.search`; anchor it with ^ or $)."""

    def problems(self, cfg: RewardConfig, where: str) -> list[str]:
        if cfg.pattern is None:
            return [f"{where}.pattern is required by the regex reward, e.g. pattern='####'"]
        try:
            re.compile(cfg.pattern)
        except re.error as exc:
            return [f"{where}.pattern={cfg.pattern!r} is not a regular expression: {exc}"]
        return []

    def columns(self, cfg: RewardConfig) -> tuple[str, ...]:
        return ()

    def build(self, cfg: RewardConfig, context: RewardContext) -> RewardFunction:
        assert cfg.pattern is not None  # `problems` refused the config without one
        compiled = re.compile(cfg.pattern)

        def score(completions: Sequence[str], prompts: Sequence[str], rows: Sequence[Row]) -> list[float]:
            return [float(compiled.search(c) is not None) for c in completions]

        return score


# length


def length_reward(length: int, target: int) -> float:
    """-|length - target| / target: 0 at the target, falling by 1 per target's worth of distance."""
    return -abs(length - target) / target


class Length:
    """A penalty for a completion's distance from `target` tokens (or words): `length_reward`."""

    def problems(self, cfg: RewardConfig, where: str) -> list[str]:
        if cfg.target is None or cfg.target < 1:
            return [f"{where}.target={cfg.target} must be a length of at least 1 (in {LengthUnit(cfg.unit).value})"]
        return []

    def columns(self, cfg: RewardConfig) -> tuple[str, ...]:
        return ()

    def build(self, cfg: RewardConfig, context: RewardContext) -> RewardFunction:
        assert cfg.target is not None  # `problems` refused the config without one
        target, tokenizer = cfg.target, context.tokenizer

        def count(text: str) -> int:
            if cfg.unit == LengthUnit.words:
                return len(text.split())
            return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

        def score(completions: Sequence[str], prompts: Sequence[str], rows: Sequence[Row]) -> list[float]:
            return [length_reward(count(c), target) for c in completions]

        return score


# reward_model


class RewardModel:
    """The reward a finished `task=reward_model` run gives each (prompt, completion) pair.

    The run is loaded by the command layer, which can read run directories (tasks cannot): it
    hands a loader in through `FrozenModels.scorer`, and this function asks it for the scorer of
    `run_dir` when first built.
    """

    def problems(self, cfg: RewardConfig, where: str) -> list[str]:
        if not cfg.run_dir:
            return [f"{where}.run_dir is required by the reward_model reward: a finished task=reward_model run"]
        return []

    def columns(self, cfg: RewardConfig) -> tuple[str, ...]:
        return ()

    def build(self, cfg: RewardConfig, context: RewardContext) -> RewardFunction:
        assert cfg.run_dir is not None  # `problems` refused the config without one
        scorer = context.frozen.scorer(cfg.run_dir)

        def score(completions: Sequence[str], prompts: Sequence[str], rows: Sequence[Row]) -> list[float]:
            return [float(s) for s in scorer(list(prompts), list(completions))]

        return score


REWARDS.register("exact_answer", RewardConfig)(ExactAnswer())
REWARDS.register("regex", RewardConfig)(Pattern())
REWARDS.register("length", RewardConfig)(Length())
REWARDS.register("reward_model", RewardConfig)(RewardModel())
