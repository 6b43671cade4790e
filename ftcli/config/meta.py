"""The settings of meta-learning (`trainer.meta`): Reptile or first-order MAML across several
classification datasets, giving a starting point that an ordinary `ftcli train` fine-tunes.

Meta-training is on when `tasks` lists datasets; with the empty default `ftcli train` trains as
always and nothing here is read. Rules that join these settings to the task, the method and the
data settings are `ftcli.cli.registered`'s; the datasets' own rows are checked once they are read
(`ftcli.data.episodes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

REPTILE_STEP = 0.1  # Reptile's default epsilon: a tenth of the way to the adapted weights per episode


class MetaAlgorithm(str, Enum):
    reptile = "reptile"  # θ ← θ + ε(θ' − θ): a step towards the weights the inner steps reached
    fomaml = "fomaml"  # θ ← θ − β·∇L_query(θ'): the query loss's gradient at the adapted weights


@dataclass
class MetaConfig:
    """One outer step per episode: `inner_steps` SGD steps on the support rows of a few classes of
    one dataset (weights θ'), then an outer step of `meta_lr` on the shared weights θ."""

    tasks: list[str] = field(default_factory=list)  # training files, one classification dataset each; empty: off
    algorithm: MetaAlgorithm = MetaAlgorithm.reptile
    ways: Optional[int] = None  # classes per episode; null: all of the dataset's classes
    shots: int = 8  # support rows per class, which the inner steps train on
    queries: int = 8  # query rows per class: FOMAML's outer loss, and the accuracy before and after adapting
    inner_steps: int = 5  # plain SGD steps on the support rows per episode
    inner_lr: float = 0.1  # their learning rate
    meta_lr: Optional[float] = None  # the outer step size; null: 0.1 for reptile (its epsilon), inner_lr for fomaml
    episodes: int = 1000  # outer steps
    eval_episodes: int = 16  # fixed episodes adapted to every trainer.eval_steps episodes and at the end; 0: none

    def step_size(self) -> float:
        """The outer step size: `meta_lr`, or the algorithm's default when it is null."""
        if self.meta_lr is not None:
            return self.meta_lr
        return REPTILE_STEP if self.algorithm is MetaAlgorithm.reptile else self.inner_lr

    def validate(self) -> list[str]:
        problems = []
        if len(self.tasks) == 1:
            problems.append(
                f"trainer.meta.tasks lists one dataset ({self.tasks[0]}); meta-learning needs at least two, "
                "each with its own label set (to train on one dataset, drop trainer.meta.tasks and set data.train_file)"
            )
        repeated = sorted({task for task in self.tasks if self.tasks.count(task) > 1})
        if repeated:
            problems.append(f"trainer.meta.tasks lists {', '.join(repeated)} more than once; list each dataset once")
        if self.ways is not None and self.ways < 2:
            problems.append(
                f"trainer.meta.ways={self.ways} must be at least 2 (or null for all of a dataset's classes)")
        counts = {"shots": self.shots, "queries": self.queries, "inner_steps": self.inner_steps,
                  "episodes": self.episodes}
        problems += [f"trainer.meta.{key}={value} must be at least 1" for key, value in counts.items() if value < 1]
        if self.eval_episodes < 0:
            problems.append(f"trainer.meta.eval_episodes={self.eval_episodes} must be at least 0 (0: no evaluation)")
        rates = {"inner_lr": self.inner_lr, "meta_lr": self.meta_lr}
        problems += [f"trainer.meta.{key}={value} must be positive" for key, value in rates.items()
                     if value is not None and value <= 0]
        return problems
