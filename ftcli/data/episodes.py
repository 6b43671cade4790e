"""Episodes of meta-learning: a few rows of a few classes of one dataset, drawn seeded.

An episode picks a dataset, `ways` of its classes (all of them when `ways` is None) in a random
order, and `shots + queries` distinct rows of each class: the first `shots` are its support rows,
the rest its query rows. The datasets are picked uniformly, not by size: TREC's 5,452 rows would
otherwise get a third of AG News's episodes, and a small dataset would hardly shape the encoder.

Every episode is a function of the seed, its stream (training or evaluation) and its index alone,
so a resumed run draws the episodes the uninterrupted run draws with no sampler state to save,
and the evaluation episodes are the same at every evaluation. Evaluation episodes go round the
datasets in turn, so each dataset gets its share of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftcli import ui
from ftcli.errors import DataError

TRAIN_STREAM, EVAL_STREAM = 0, 1


@dataclass(frozen=True)
class TaskRows:
    """One dataset as episodes draw from it: its name, its class names, and each row's class id."""

    name: str
    classes: list[str]
    targets: list[int]


@dataclass(frozen=True)
class Episode:
    """The rows of one episode, as indices into its dataset's rows.

    The episode's class `i` is the dataset's class `classes[i]`; `support[i]` and `query[i]` are
    the rows drawn of it.
    """

    task: int
    classes: list[int]
    support: list[list[int]]
    query: list[list[int]]

    @staticmethod
    def labelled(part: list[list[int]]) -> tuple[list[int], list[int]]:
        """The rows of `support` or `query`, class by class, and the episode class of each."""
        rows = [row for drawn in part for row in drawn]
        labels = [label for label, drawn in enumerate(part) for _ in drawn]
        return rows, labels


class EpisodeSampler:
    """Draws the episodes of a run from its datasets, once they are checked to hold enough rows.

    A class with fewer than `shots + queries` rows cannot fill an episode. With `ways` set, such a
    class is left out of the dataset's episodes (said once) as long as `ways` others remain; with
    `ways` None every class is in every episode, so each must have the rows.

    Raises:
        DataError: naming, for every dataset that cannot fill an episode, the classes short of rows
            and how many rows each has, or how few classes the dataset has.
    """

    def __init__(self, tasks: list[TaskRows], ways: int | None, shots: int, queries: int, seed: int) -> None:
        self.tasks, self.ways, self.shots, self.queries = tasks, ways, shots, queries
        self.seed = seed % 2**63  # numpy seeds are not negative
        self.pools = [_rows_by_class(task) for task in tasks]
        self.eligible = self._check()

    def train_episode(self, index: int) -> Episode:
        """Training episode `index`: a dataset picked uniformly, then its classes and rows."""
        rng = np.random.default_rng([self.seed, TRAIN_STREAM, index])
        return self._draw(rng, int(rng.integers(len(self.tasks))))

    def eval_episode(self, index: int) -> Episode:
        """Evaluation episode `index`, of dataset `index` modulo the number of datasets."""
        rng = np.random.default_rng([self.seed, EVAL_STREAM, index])
        return self._draw(rng, index % len(self.tasks))

    def _draw(self, rng: np.random.Generator, task: int) -> Episode:
        eligible = self.eligible[task]
        classes = [int(c) for c in rng.choice(eligible, self.ways or len(eligible), replace=False)]
        drawn = [[int(row) for row in rng.choice(self.pools[task][c], self.shots + self.queries, replace=False)]
                 for c in classes]
        return Episode(task, classes, [rows[:self.shots] for rows in drawn], [rows[self.shots:] for rows in drawn])

    def _check(self) -> list[list[int]]:
        """The classes each dataset's episodes draw from, once every dataset can fill an episode."""
        need = self.shots + self.queries
        problems, eligible = [], []
        for task, pool in zip(self.tasks, self.pools):
            counts = {c: len(pool.get(c, [])) for c in range(len(task.classes))}
            short = {task.classes[c]: n for c, n in counts.items() if n < need}
            eligible.append([c for c, n in counts.items() if n >= need])
            wanted = self.ways or len(task.classes)
            if self.ways is not None and self.ways > len(task.classes):
                problems.append(f"trainer.meta.ways={self.ways}, but {task.name} has only {len(task.classes)} classes "
                                f"({', '.join(task.classes)})")
            elif len(eligible[-1]) < wanted:
                problems += [f"{task.name}: class {name!r} has {n} rows, fewer than the shots + queries = {need} "
                             "an episode draws of each class" for name, n in short.items()]
            elif short:
                left_out = ", ".join(f"{name!r} ({n} rows)" for name, n in short.items())
                ui.warn(f"{task.name}: classes with fewer than {need} rows are left out of its episodes: {left_out}")
        if problems:
            raise DataError(
                "\n".join(problems),
                hint="lower trainer.meta.shots or trainer.meta.queries, or set trainer.meta.ways to fewer classes "
                "than a dataset has (episodes then leave its short classes out)",
            )
        return eligible


def _rows_by_class(task: TaskRows) -> dict[int, list[int]]:
    """Each class id's rows, in file order."""
    pool: dict[int, list[int]] = {}
    for row, target in enumerate(task.targets):
        pool.setdefault(target, []).append(row)
    return pool

