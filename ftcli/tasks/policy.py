"""What the tasks that tune a causal LM as a policy against its reference share (`preference`, `kto`).

Their features hold answered sequences (`ftcli.tasks.scored_answers`): a training feature holds
the sequences its loss compares (a pair's two answers; KTO's completion and a mismatched one for
the KL estimate), a predict feature one answer to score, or only a prompt to answer. `sides`
says which sequences a feature holds; from it this base gives the outputs (log-probabilities
under the policy and the reference, or generated text), the reference log-probabilities
precomputed once (`task.precompute_reference`), and the generation settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Optional, TypeVar

from ftcli.config.schema import DataConfig, GenerationConfig, TaskConfig
from ftcli.data.readers import Row
from ftcli.engine.frozen import FrozenModels
from ftcli.engine.step import Step
from ftcli.tasks.bound import BoundTask
from ftcli.tasks.chat import Template
from ftcli.tasks.notes import NOTE, RowNote
from ftcli.tasks.preference_rows import Turns, row_prompt, with_system
from ftcli.tasks.responses import as_decoder
from ftcli.tasks.scored_answers import AnswerEncoder, Tokens

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from accelerate import Accelerator
    from torch import nn
    from transformers import PretrainedConfig
    from transformers.generation.streamers import BaseStreamer

    from ftcli.data.splits import Splits
    from ftcli.engine.step import Batch
    from ftcli.models.sources import ModelClass
    from ftcli.tasks.base import Autocast, Feature

P = TypeVar("P", bound="PolicyConfig")
C = TypeVar("C", bound=TaskConfig)
GENERATED = "generated"


@dataclass
class PolicyConfig(TaskConfig):
    max_length: int = 1024  # prompt + answer tokens per sequence; a prompt alone this long is refused
    skip_long_prompts: bool = False  # true: rows whose prompt alone fills max_length are left out (counted), not refused
    beta: Optional[float] = None  # null: the loss's usual strength
    precompute_reference: bool = False  # reference log-probabilities once before training; none held after
    disable_dropout: bool = True  # no dropout in the trained model: the same answer scores the same twice
    template: Template = Template.auto
    prompt_column: str = "prompt"
    system_column: str = "system"
    response_column: str = "response"  # predict: an answer to score with its implicit reward
    system_prompt: str = ""
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    @property
    def strength(self) -> float:
        """β as the loss uses it: `beta`, or 0.1 when it is null."""
        return self.beta if self.beta is not None else 0.1

    @property
    def needs_reference(self) -> bool:
        return True

    def validate(self) -> list[str]:
        problems = super().validate() + self.generation.validate()
        if self.beta is not None and self.beta <= 0:
            problems.append(f"task.beta={self.beta} must be positive (or null for the loss's default)")
        return problems


class PolicyKind(Generic[C]):
    """What the registered kinds of the tasks that tune a causal LM as a policy share (these two,
    and `grpo`): the model (the embedded MiniLM as a left-to-right decoder, `as_decoder`) and no
    label set, the vocabulary being the labels; each kind adds its headline metric and `bind`."""

    def model_class(self) -> ModelClass:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def model_config(self, task: C, model: PretrainedConfig) -> dict[str, Any]:
        return as_decoder(model)

    def label_names(self, splits: Splits, task: C, data: DataConfig) -> list[str]:
        return []


class PolicyTask(BoundTask[P], ABC):
    """A causal LM scored on the log-probabilities of answers, against its reference."""

    @property
    def generation(self) -> GenerationConfig:
        return self.cfg.generation

    @abstractmethod
    def sides(self, feature: Feature) -> list[Tokens]:
        """The answered sequences `feature` holds, in the order its outputs list them; none for a
        feature that only holds a prompt to answer."""

    def encoder(self) -> AnswerEncoder:
        return AnswerEncoder(self.tokenizer, self.cfg.template, self.cfg.max_length)

    def pad_id(self) -> int:
        tokenizer = self.tokenizer
        return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0)

    def row_turns(self, row: Row, where: str) -> Turns:
        """A single-prompt row's turns: its prompt (or `data.text_column`, for plain text) and system turn."""
        cfg = self.cfg
        column = cfg.prompt_column if cfg.prompt_column in row else self.data.text_column
        system = row.get(cfg.system_column)
        return with_system(row_prompt(row, column, where),
                           system if isinstance(system, str) else cfg.system_prompt)

    def skipped(self, source: str, count: int, rows: int) -> None:
        """Say how many rows `task.skip_long_prompts` left out of `source`."""
        from ftcli import ui

        if count:
            ui.warn(f"{source}: {count} of {rows} rows left out: their prompt alone fills "
                    f"task.max_length={self.cfg.max_length} tokens (task.skip_long_prompts=true)")

    def predict_feature(self, row: Row, index: int, where: str) -> Feature:
        """A predict row that holds a prompt and an answer to score (`task.response_column`), or only a prompt."""
        encoder = self.encoder()
        turns = self.row_turns(row, where)
        prompt = encoder.prompt(turns)
        answer = row.get(self.cfg.response_column)
        if isinstance(answer, str) and answer.strip():
            answered = encoder.answered(turns, answer, where)
            return {"input_ids": answered.ids, "answer": (answered.ids, answered.labels), "prompt_ids": prompt,
                    NOTE: RowNote(index, answered.cut)}
        return {"input_ids": prompt, "prompt_ids": prompt, NOTE: RowNote(index)}

    def precompute(self, model: nn.Module, features: dict[str, list[Feature]], store: Path, batch_size: int,
                   autocast: Autocast) -> None:
        """With `task.precompute_reference`, every split's reference log-probabilities, once; the
        reference copy a whole-model method loads for them is dropped afterwards."""
        from ftcli.tasks.scored_answers import precomputed, reference_only

        if not (self.cfg.precompute_reference and self.cfg.needs_reference):
            return
        for split, split_features in features.items():
            def compute(feats: list[Feature] = split_features) -> list[list[float]]:
                return reference_only(self.frozen, model, feats, self.sides, self.pad_id(), batch_size, autocast)

            kept = precomputed(store, split, split_features, self.sides, compute)
            for feature, values in zip(split_features, kept):
                feature["reference"] = values
        self.frozen.release()

    def outputs(
        self, model: nn.Module, features: list[Feature], batch_size: int, autocast: Autocast,
        streamer: BaseStreamer | None = None,
    ) -> list[dict[str, Any]]:
        """Per feature, the summed answer log-probabilities of its sequences under the model
        (`logps`) and the reference (`refs`, None without one) and their token counts
        (`tokens`); or the text written for a feature that holds only a prompt (`generated`)."""
        from ftcli.engine.eval_mode import evaluating
        from ftcli.tasks.scored_answers import reference_logps, scored

        results: list[dict[str, Any]] = [{} for _ in features]
        by_count: dict[int, list[int]] = {}
        for i, feature in enumerate(features):
            by_count.setdefault(len(self.sides(feature)), []).append(i)

        def reference(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return reference_logps(self.frozen, model, batch)

        for count, picked in sorted(by_count.items()):
            if not count:
                texts = self._generate(model, [features[i] for i in picked], batch_size, autocast, streamer)
                for i, text in zip(picked, texts):
                    results[i][GENERATED] = text
                continue
            subset = [features[i] for i in picked]
            live = self.cfg.needs_reference and not all("reference" in f for f in subset)
            with evaluating(model):
                batches = scored(model, subset, self.sides, self.pad_id(), batch_size, autocast,
                                 reference if live else None)
                for indices, values, counts, refs in batches:
                    for row, i in enumerate(indices):
                        known = subset[i].get("reference")
                        at = [side * len(indices) + row for side in range(count)]
                        results[picked[i]] = {
                            "logps": [float(values[a]) for a in at],
                            "tokens": [int(counts[a]) for a in at],
                            "refs": [float(refs[a]) for a in at] if refs is not None
                            else list(known) if known is not None else [None] * count,
                        }
        return results

    def _generate(self, model: nn.Module, features: list[Feature], batch_size: int, autocast: Autocast,
                  streamer: BaseStreamer | None) -> list[str]:
        from ftcli.engine.generation import generate_ids, stop_settings

        tokenizer = self.tokenizer
        settings = {**self.generation.as_kwargs(),
                    **stop_settings(model, self.encoder().stop_ids(), tokenizer.pad_token_id)}
        prompts = [{"input_ids": f["prompt_ids"]} for f in features]

        def collate(batch: list[Feature]) -> Batch:
            return tokenizer.pad(batch, padding=True, padding_side="left", return_tensors="pt")

        ids = generate_ids(model, prompts, collate, batch_size, settings, autocast, streamer)
        return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def answer_prediction(self, out: dict[str, Any]) -> dict[str, Any]:
        """What predict writes for a feature with one answer (its implicit reward and log-probability),
        or with only a prompt (the generated text)."""
        from ftcli.tasks.scored_answers import implicit_reward

        if GENERATED in out:
            return {GENERATED: out[GENERATED]}
        reward = implicit_reward(out["logps"][0], out["refs"][0], out["tokens"][0], self.cfg.strength)
        return {"reward": reward, "logp": out["logps"][0]}


class PolicyStep(Step, Generic[P]):
    """What the training steps of these tasks share: the trained model kept for the reference pass,
    dropout off (`task.disable_dropout`), and the reference's log-probabilities of a batch's
    sequences, from the batch when they were precomputed."""

    def __init__(self, cfg: P, frozen: FrozenModels) -> None:
        self.cfg, self.frozen = cfg, frozen
        self.model: nn.Module | None = None

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        from ftcli.engine.eval_mode import disable_dropout

        self.model = model
        if self.cfg.disable_dropout:
            disable_dropout(model)

    def reference(self, batch: Batch) -> torch.Tensor:
        """The reference's summed answer log-probability of each sequence of `batch`, in its order."""
        from ftcli.tasks.scored_answers import reference_logps

        if "reference" in batch:
            return batch["reference"]
        if self.model is None:
            raise RuntimeError("prepare() comes before the first batch")
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
        return reference_logps(self.frozen, self.model, inputs)
