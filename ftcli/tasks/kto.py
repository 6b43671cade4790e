"""`kto`: a causal LM learns from single answers marked desirable or not (Ethayarajh et al. 2024).

Rows hold a `prompt`, a `completion` and a `label` (true: desirable). Paired data (prompt,
chosen, rejected, as `task=preference` reads it) is unpaired with `task.unpair=true`: each pair
gives a desirable row (its chosen answer) and an undesirable one (its rejected answer).

KTO's reference point is the policy's KL divergence from the reference, estimated on mismatched
answers: each row is also scored with the next row's completion after its own prompt (fixed when
the rows are encoded, so the estimate can be precomputed), and the batch's mean log-ratio on
those, never below zero and without gradients, is the point. `task.desirable_weight` and
`task.undesirable_weight` balance unequal shares of the two kinds; the paper suggests weights
that make weight × count about equal, within a factor of 4/3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import DataConfig
from ftcli.data.readers import Row
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.notes import NOTE, RowNote
from ftcli.tasks.policy import PolicyConfig, PolicyKind, PolicyStep, PolicyTask
from ftcli.tasks.preference_rows import PairColumns, Turns, read_completion, read_pair
from ftcli.tasks.scored_answers import AnswerEncoder, PromptTooLong, Tokens

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from ftcli.engine.step import Batch, Collate, TrainingStep



@dataclass
class KtoConfig(PolicyConfig):
    name: str = "kto"
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    completion_column: str = "completion"
    label_column: str = "label"  # true/false: whether the completion is desirable
    unpair: bool = False  # rows are preference pairs: each gives its chosen answer as desirable, its rejected as not
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    refinement_column: str = "refinement"  # unpair, rows without chosen_column (feedback rows): desirable
    output_column: str = "output"  # and their first answer: undesirable

    def validate(self) -> list[str]:
        problems = super().validate()
        for name in ("desirable_weight", "undesirable_weight"):
            if getattr(self, name) <= 0:
                problems.append(f"task.{name}={getattr(self, name)} must be positive")
        return problems


class Kto(PolicyKind[KtoConfig]):
    """The registered kind; `bind` gives the `KtoTask`."""

    def best_metric(self, task: KtoConfig) -> str:
        return "reward_margin"

    def bind(
        self, cfg: KtoConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> KtoTask:
        return KtoTask(self, cfg, data, labels, tokenizer, frozen=frozen)


class KtoTask(PolicyTask[KtoConfig]):
    """KTO bound to a run."""

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """One feature per completion (two per pair with `task.unpair`): the answered sequence, the
        mismatched one (this prompt, the next feature's completion) and whether it is desirable."""
        cfg = self.cfg
        if not with_labels:
            return [self.predict_feature(row, i, f"{source}: record {i}") for i, row in enumerate(rows)]
        columns = PairColumns(cfg.prompt_column, cfg.chosen_column, cfg.rejected_column, cfg.system_column,
                              output=cfg.output_column, refinement=cfg.refinement_column)
        items: list[tuple[int, Turns, str, bool, str]] = []
        for index, row in enumerate(rows):
            where = f"{source}: record {index}"
            if cfg.unpair:
                pair = read_pair(row, columns, cfg.system_prompt, where)
                items += [(index, pair.turns, pair.chosen, True, where), (index, pair.turns, pair.rejected, False, where)]
            else:
                turns, text, desirable = read_completion(row, columns, cfg.completion_column, cfg.label_column,
                                                         cfg.system_prompt, where)
                items.append((index, turns, text, desirable, where))
        encoder = self.encoder()
        features = []
        if cfg.skip_long_prompts:
            kept = [item for item in items if _fits(encoder, item)]
            self.skipped(source, len({i[0] for i in items}) - len({i[0] for i in kept}), len(rows))
            items = kept
        for n, (index, turns, text, desirable, where) in enumerate(items):
            answered = encoder.answered(turns, text, where)
            mismatched = encoder.answered(turns, _other_row(items, n)[2], where)
            features.append({
                "input_ids": max(answered.ids, mismatched.ids, key=len),
                "answer": (answered.ids, answered.labels),
                "mismatched": (mismatched.ids, mismatched.labels),
                "desirable": desirable,
                "prompt_ids": encoder.prompt(turns),
                NOTE: RowNote(index, answered.cut),
            })
        return features

    def sides(self, feature: Feature) -> list[Tokens]:
        if "mismatched" in feature:
            return [feature["answer"], feature["mismatched"]]
        return [feature["answer"]] if "answer" in feature else []

    def collator(self) -> Collate:
        return KtoCollator(self.pad_id())

    def training_step(self) -> TrainingStep:
        return KtoStep(self.cfg, self.frozen)

    def scores(self, outputs: list[dict[str, Any]], features: list[Feature]) -> dict[str, Any]:
        """The mean loss over completions with the split's KL estimate as reference point, the KL,
        and the mean implicit rewards of desirable and undesirable completions."""
        import torch

        scored = [(o, f) for o, f in zip(outputs, features) if len(o.get("logps", ())) == 2]
        if not scored:
            return {"loss": None}
        logps = torch.tensor([o["logps"] for o, _ in scored], dtype=torch.float64)
        refs = torch.tensor([o["refs"] for o, _ in scored], dtype=torch.float64)
        desirable = torch.tensor([f["desirable"] for _, f in scored])
        figures = KtoFigures.of(self.cfg, logps, refs, desirable)
        return {"loss": float(figures.losses.mean()), **figures.means()}

    def predictions(self, outputs: list[dict[str, Any]], features: list[Feature]) -> list[dict[str, Any]]:
        return [self.answer_prediction(out) for out in outputs]

    def prediction_fields(self) -> tuple[str, ...]:
        return ("generated", "reward", "logp")


def _fits(encoder: AnswerEncoder, item: tuple[int, Turns, str, bool, str]) -> bool:
    try:
        encoder.answered(item[1], item[2], item[4])
    except PromptTooLong:
        return False
    return True


def _other_row(items: list[tuple[int, Turns, str, bool, str]], n: int) -> tuple[int, Turns, str, bool, str]:
    """The next completion that answers another row's prompt (an unpaired pair's two answers share
    one), or the completion itself when every completion answers the same row."""
    for step in range(1, len(items)):
        other = items[(n + step) % len(items)]
        if other[0] != items[n][0]:
            return other
    return items[n]


@dataclass
class KtoCollator:
    """The completions, then their mismatched sequences, right-padded into one batch of 2·B, with
    whether each completion is desirable and the precomputed reference log-probabilities."""

    pad_id: int

    def __call__(self, features: list[Feature]) -> Batch:
        import torch

        from ftcli.tasks.scored_answers import pad

        batch = pad([f["answer"] for f in features] + [f["mismatched"] for f in features], self.pad_id)
        batch["desirable"] = torch.tensor([f["desirable"] for f in features])
        if all("reference" in f for f in features):
            batch["reference"] = torch.tensor([f["reference"][side] for side in (0, 1) for f in features],
                                              dtype=torch.float32)
        return batch


@dataclass
class KtoFigures:
    losses: torch.Tensor
    rewards: torch.Tensor
    desirable: torch.Tensor
    kl: torch.Tensor

    @classmethod
    def of(cls, cfg: KtoConfig, logps: torch.Tensor, refs: torch.Tensor, desirable: torch.Tensor) -> KtoFigures:
        """`logps` and `refs` are (completions, 2): each completion's own sequence, then its mismatched one."""
        from ftcli.tasks.preference_losses import kto

        kl = (logps[:, 1] - refs[:, 1]).mean().detach()
        losses = kto(logps[:, 0], refs[:, 0], desirable, kl, cfg.strength, cfg.desirable_weight, cfg.undesirable_weight)
        return cls(losses, (cfg.strength * (logps[:, 0] - refs[:, 0])).detach(), desirable, kl.clamp(min=0))

    def sums(self) -> dict[str, torch.Tensor]:
        import torch

        good, bad = self.desirable, ~self.desirable
        right = torch.where(good, self.rewards > 0, self.rewards < 0)
        return {"reward_accuracy": right.float().sum(), "desirable_reward": (self.rewards * good).sum(),
                "undesirable_reward": (self.rewards * bad).sum(), "desirable": good.sum(), "undesirable": bad.sum(),
                "kl": self.kl * len(self.rewards)}

    def means(self) -> dict[str, float]:
        return means(self.sums(), len(self.rewards))


def means(sums: dict[str, Any], rows: int) -> dict[str, float]:
    """The figures from summed values: each kind's reward over its own rows, the rest over all rows."""
    good, bad = max(float(sums["desirable"]), 1.0), max(float(sums["undesirable"]), 1.0)
    desirable, undesirable = float(sums["desirable_reward"]) / good, float(sums["undesirable_reward"]) / bad
    return {"reward_accuracy": float(sums["reward_accuracy"]) / max(rows, 1), "reward_margin": desirable - undesirable,
            "desirable_reward": desirable, "undesirable_reward": undesirable, "kl": float(sums["kl"]) / max(rows, 1)}


class KtoStep(PolicyStep[KtoConfig]):
    """The KTO loss of a batch of completions, a mean over them (the units): the policy's pass over
    the completions with gradients, over the mismatched sequences without (the KL estimate is a
    constant), and the reference's over both, from the batch when precomputed."""

    def __init__(self, cfg: KtoConfig, frozen: FrozenModels) -> None:
        super().__init__(cfg, frozen)
        self.totals: dict[str, Any] = {}
        self.rows = 0

    def units(self, batch: Batch) -> torch.Tensor:
        import torch

        return torch.tensor(len(batch["desirable"]), device=batch["input_ids"].device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        import torch

        from ftcli.tasks.scored_answers import logps

        rows = len(batch["desirable"])
        own = {k: batch[k][:rows] for k in ("input_ids", "attention_mask", "labels")}
        other = {k: batch[k][rows:] for k in ("input_ids", "attention_mask", "labels")}
        refs = self.reference(batch)
        values = logps(model, own)[0]
        with torch.no_grad():
            mismatched = logps(model, other)[0]
        figures = KtoFigures.of(self.cfg, torch.stack([values, mismatched], 1), torch.stack([refs[:rows], refs[rows:]], 1),
                                batch["desirable"])
        for name, total in figures.sums().items():
            self.totals[name] = self.totals.get(name, 0) + total.detach()
        self.rows += rows
        return figures.losses.mean()

    def logged(self) -> dict[str, float]:
        if not self.rows:
            return {}
        figures = {name: round(value, 4) for name, value in means(self.totals, self.rows).items()}
        self.totals, self.rows = {}, 0
        return figures


TASKS.register("kto", KtoConfig)(Kto())
