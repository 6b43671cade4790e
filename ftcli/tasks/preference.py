"""`preference`: a causal LM learns from pairs of answers to one prompt, one preferred.

Rows are strings, whole HH conversations, lists of chat turns, or feedback rows whose
refinement is preferred to their first output (`ftcli.tasks.pairs`); each side is the prompt
written as `task=instruction` writes it plus one answer, and log-probabilities cover the answer's
tokens only (`ftcli.tasks.scored_answers`). Both sides of a batch go through the model in one
forward pass.

The losses (`task.loss`, formulas in `ftcli.tasks.preference_losses`): `dpo`, `robust` (rDPO;
`task.label_smoothing` is the rate of flipped labels), `ipo`, and the reference-free `simpo` and
`orpo`; `task.label_smoothing` turns `dpo` into cDPO. `task.sft_weight` adds the chosen answer's
loss per token. The reference model is the method's adapter switched off, or the base model
loaded again for methods that train the base weights; `task.precompute_reference=true` computes
its log-probabilities once before training instead, and no reference is held while training.

Every evaluation reports the loss, reward accuracy (the chosen answer's implicit reward above
the rejected one's), the mean margin, both rewards and both log-probabilities. `predict`
generates for rows with only a prompt, and scores given answers with their implicit reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import DataConfig
from ftcli.data.readers import Row
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.notes import NOTE, RowNote
from ftcli.tasks.policy import PolicyConfig, PolicyKind, PolicyStep, PolicyTask
from ftcli.tasks.preference_rows import PairColumns, holds_pair, read_pair
from ftcli.tasks.scored_answers import PromptTooLong, Tokens

if TYPE_CHECKING:

    import torch
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ftcli.engine.step import Batch, Collate, TrainingStep

PREDICTED = ("generated", "reward", "logp", "reward_chosen", "reward_rejected", "prefers_chosen")


class PreferenceLoss(str, Enum):
    dpo = "dpo"
    robust = "robust"
    ipo = "ipo"
    simpo = "simpo"
    orpo = "orpo"


REFERENCE_FREE = (PreferenceLoss.simpo, PreferenceLoss.orpo)
DEFAULT_BETA = {PreferenceLoss.simpo: 2.0}  # the SimPO paper's range is 2.0–2.5; 0.1 for the others


@dataclass
class PreferenceConfig(PolicyConfig):
    name: str = "preference"
    loss: PreferenceLoss = PreferenceLoss.dpo
    label_smoothing: float = 0.0  # dpo: cDPO's label noise; robust: the rate of flipped labels (required)
    gamma: float = 0.5  # simpo: the target margin of the length-normalised rewards
    sft_weight: float = 0.0  # adds this times the chosen answer's loss per token
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    refinement_column: str = "refinement"  # rows without chosen_column (feedback rows): chosen
    output_column: str = "output"  # and their first answer: rejected

    @property
    def strength(self) -> float:
        """β as the loss uses it: `beta`, or the loss's usual value when it is null (0.1; SimPO 2.0)."""
        return self.beta if self.beta is not None else DEFAULT_BETA.get(self.loss, 0.1)

    @property
    def needs_reference(self) -> bool:
        return self.loss not in REFERENCE_FREE

    def validate(self) -> list[str]:
        problems = super().validate()
        if not 0 <= self.label_smoothing < 0.5:
            problems.append(f"task.label_smoothing={self.label_smoothing} must be in [0, 0.5)")
        if self.loss is PreferenceLoss.robust and not self.label_smoothing:
            problems.append("task.loss=robust needs task.label_smoothing, the rate of flipped labels (e.g. 0.1)")
        if self.label_smoothing and self.loss not in (PreferenceLoss.dpo, PreferenceLoss.robust):
            problems.append(f"task.label_smoothing applies to task.loss=dpo or robust, not {self.loss.value}")
        if self.sft_weight < 0:
            problems.append(f"task.sft_weight={self.sft_weight} must be 0 or more")
        if self.precompute_reference and not self.needs_reference:
            problems.append(f"task.precompute_reference: task.loss={self.loss.value} uses no reference model")
        return problems


class Preference(PolicyKind[PreferenceConfig]):
    """The registered kind; `bind` gives the `PreferenceTask` that encodes, trains and scores pairs."""

    def best_metric(self, task: PreferenceConfig) -> str:
        return "reward_accuracy"

    def bind(
        self, cfg: PreferenceConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> PreferenceTask:
        return PreferenceTask(self, cfg, data, labels, tokenizer, frozen=frozen)


class PreferenceTask(PolicyTask[PreferenceConfig]):
    """Preference tuning bound to a run."""

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """One feature per row: both answered sequences (`chosen`, `rejected`) and the prompt.

        Without labels (predict) a row may also hold one answer to score (`task.response_column`),
        or only a prompt to answer.
        """
        cfg = self.cfg
        encoder = self.encoder()
        columns = PairColumns(cfg.prompt_column, cfg.chosen_column, cfg.rejected_column, cfg.system_column,
                              output=cfg.output_column, refinement=cfg.refinement_column)
        features, skipped = [], 0
        for index, row in enumerate(rows):
            where = f"{source}: record {index}"
            if not with_labels and not holds_pair(row, columns):
                features.append(self.predict_feature(row, index, where))
                continue
            pair = read_pair(row, columns, cfg.system_prompt, where)
            try:
                chosen = encoder.answered(pair.turns, pair.chosen, where)
                rejected = encoder.answered(pair.turns, pair.rejected, where)
            except PromptTooLong:
                if not cfg.skip_long_prompts:
                    raise
                skipped += 1
                continue
            longer = chosen if len(chosen.ids) >= len(rejected.ids) else rejected
            features.append({
                "input_ids": longer.ids,  # what batching by length measures
                "chosen": (chosen.ids, chosen.labels),
                "rejected": (rejected.ids, rejected.labels),
                "prompt_ids": encoder.prompt(pair.turns),
                NOTE: RowNote(index, chosen.cut or rejected.cut),
            })
        self.skipped(source, skipped, len(rows))
        return features

    def sides(self, feature: Feature) -> list[Tokens]:
        if "chosen" in feature:
            return [feature["chosen"], feature["rejected"]]
        return [feature["answer"]] if "answer" in feature else []

    def collator(self) -> Collate:
        return PairCollator(self.pad_id())

    def training_step(self) -> TrainingStep:
        return PreferenceStep(self.cfg, self.frozen)

    def scores(self, outputs: list[dict[str, Any]], features: list[Feature]) -> dict[str, Any]:
        """The mean loss over pairs, then reward accuracy and margin, each answer's mean reward and
        log-probability."""
        import torch

        pairs = [o for o in outputs if len(o.get("logps", ())) == 2]
        if not pairs:
            return {"loss": None}
        logps = torch.tensor([o["logps"] for o in pairs], dtype=torch.float64)
        tokens = torch.tensor([o["tokens"] for o in pairs], dtype=torch.float64)
        refs = torch.tensor([o["refs"] for o in pairs], dtype=torch.float64) if self.cfg.needs_reference else None
        figures = PairFigures.of(self.cfg, logps, tokens, refs)
        return {"loss": float(figures.losses.mean()), **figures.means(), "chosen_logp": float(logps[:, 0].mean()),
                "rejected_logp": float(logps[:, 1].mean())}

    def predictions(self, outputs: list[dict[str, Any]], features: list[Feature]) -> list[dict[str, Any]]:
        from ftcli.tasks.scored_answers import implicit_reward

        results = []
        for out in outputs:
            if len(out.get("logps", ())) != 2:
                results.append(self.answer_prediction(out))
                continue
            chosen, rejected = (implicit_reward(lp, ref, n, self.cfg.strength)
                                for lp, ref, n in zip(out["logps"], out["refs"], out["tokens"]))
            results.append({"reward_chosen": chosen, "reward_rejected": rejected, "prefers_chosen": chosen > rejected})
        return results

    def prediction_fields(self) -> tuple[str, ...]:
        return PREDICTED


@dataclass
class PairCollator:
    """Chosen rows then rejected rows, right-padded into one batch of 2·B sequences, with the
    precomputed reference log-probabilities in the same order when the features hold them."""

    pad_id: int

    def __call__(self, features: list[Feature]) -> Batch:
        import torch

        from ftcli.tasks.scored_answers import pad

        batch = pad([f["chosen"] for f in features] + [f["rejected"] for f in features], self.pad_id)
        if all("reference" in f for f in features):
            batch["reference"] = torch.tensor([f["reference"][side] for side in (0, 1) for f in features],
                                              dtype=torch.float32)
        return batch


@dataclass
class PairFigures:
    """Per-pair losses and implicit rewards of a batch or a split, from the answers' log-probabilities."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    @classmethod
    def of(cls, cfg: PreferenceConfig, logps: torch.Tensor, tokens: torch.Tensor,
           refs: torch.Tensor | None) -> PairFigures:
        """`logps`, `tokens` and `refs` are (pairs, 2): the chosen answer first."""
        from ftcli.tasks import preference_losses as losses

        beta = cfg.strength
        pair = losses.PairLogps(logps[:, 0], logps[:, 1], *((refs[:, 0], refs[:, 1]) if refs is not None else ()))
        chosen_tokens, rejected_tokens = tokens[:, 0].clamp(min=1), tokens[:, 1].clamp(min=1)
        if cfg.loss is PreferenceLoss.dpo:
            loss = losses.dpo(pair, beta, cfg.label_smoothing)
        elif cfg.loss is PreferenceLoss.robust:
            loss = losses.robust(pair, beta, cfg.label_smoothing)
        elif cfg.loss is PreferenceLoss.ipo:
            loss = losses.ipo(pair, beta)
        elif cfg.loss is PreferenceLoss.simpo:
            loss = losses.simpo(pair, chosen_tokens, rejected_tokens, beta, cfg.gamma)
        else:
            loss = losses.orpo(pair, chosen_tokens, rejected_tokens, beta)
        if cfg.sft_weight:
            loss = loss - cfg.sft_weight * pair.chosen / chosen_tokens
        if refs is not None:
            chosen, rejected = beta * (pair.chosen - refs[:, 0]), beta * (pair.rejected - refs[:, 1])
        else:
            chosen, rejected = beta * pair.chosen / chosen_tokens, beta * pair.rejected / rejected_tokens
        return cls(loss, chosen.detach(), rejected.detach())

    def sums(self) -> dict[str, torch.Tensor]:
        margin = self.chosen_rewards - self.rejected_rewards
        return {"reward_accuracy": (margin > 0).float().sum(), "reward_margin": margin.sum(),
                "chosen_reward": self.chosen_rewards.sum(), "rejected_reward": self.rejected_rewards.sum()}

    def means(self) -> dict[str, float]:
        count = max(len(self.losses), 1)
        return {name: float(total) / count for name, total in self.sums().items()}


class PreferenceStep(PolicyStep[PreferenceConfig]):
    """The preference loss of a batch of pairs: its mean over pairs (the units), both sides in one
    forward pass, the reference's log-probabilities from the batch (precomputed) or the reference."""

    def __init__(self, cfg: PreferenceConfig, frozen: FrozenModels) -> None:
        super().__init__(cfg, frozen)
        self.totals: dict[str, torch.Tensor] = {}
        self.pairs = 0

    def units(self, batch: Batch) -> torch.Tensor:
        import torch

        return torch.tensor(len(batch["input_ids"]) // 2, device=batch["input_ids"].device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        import torch

        from ftcli.tasks.scored_answers import logps

        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
        refs = self.reference(batch) if self.cfg.needs_reference else None
        values, counts = logps(model, inputs)
        pairs = len(values) // 2

        def by_pair(t: torch.Tensor) -> torch.Tensor:
            return torch.stack([t[:pairs], t[pairs:]], dim=1)

        figures = PairFigures.of(self.cfg, by_pair(values), by_pair(counts), None if refs is None else by_pair(refs))
        for name, total in figures.sums().items():
            self.totals[name] = self.totals.get(name, 0) + total.detach()
        self.pairs += pairs
        return figures.losses.mean()

    def logged(self) -> dict[str, float]:
        figures = {name: round(float(total) / max(self.pairs, 1), 4) for name, total in self.totals.items()}
        self.totals, self.pairs = {}, 0
        return figures


TASKS.register("preference", PreferenceConfig)(Preference())
