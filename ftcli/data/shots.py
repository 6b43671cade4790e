"""Few-shot training sets: exactly k rows of every class, drawn from the training rows, seeded.

`shots_per_class` is a plain function over rows, so every task that classifies rows by
`data.label_column` draws its shots the same way. `load_splits` applies it (`data.shots_per_class`)
to the training split after the validation split is carved from it and after
`data.max_train_samples`: validation holds the same rows with or without shots, and the shots
are drawn from the rows that would otherwise train.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ftcli.data.labels import class_name, single_label
from ftcli.data.readers import Row
from ftcli.errors import DataError


@dataclass(frozen=True)
class Shots:
    """What a draw kept: `per_class` rows of each of `classes` classes, out of `pool` rows."""

    per_class: int
    classes: int
    pool: int

    @property
    def rows(self) -> int:
        return self.per_class * self.classes


def shots_per_class(rows: list[Row], label_column: str, k: int, seed: int, source: str = "the training rows",
                    label_names: Sequence[str] | None = None) -> list[Row]:
    """`k` rows of every class, drawn without replacement under `seed`, in their order in `rows`.

    The classes are those the rows hold and, when `label_names` (`data.label_names`) lists them,
    each of those too; an integer label then stands for the name it indexes. The draw of one class
    does not depend on the rows of another: each class's rows are sampled from a generator seeded
    by `seed` and the class name.

    Raises:
        DataError: a row without a single label, or classes with fewer than `k` rows (each named,
            with its count).
    """
    by_class: dict[str, list[int]] = {name: [] for name in label_names or ()}
    for index, row in enumerate(rows):
        if label_column not in row:
            raise DataError(f"{source}: record {index} has no {label_column!r} column (data.label_column)",
                            hint="set data.label_column to the column of labels")
        key = class_name(single_label(row[label_column], source, index, label_column), label_names)
        by_class.setdefault(key, []).append(index)
    short = {name: len(found) for name, found in sorted(by_class.items()) if len(found) < k}
    if short:
        counts = ", ".join(f"{name!r} has {count}" for name, count in short.items())
        fewest = min(short.values())
        raise DataError(
            f"data.shots_per_class={k}: {source} has fewer than {k} rows of {len(short)} class(es): {counts}",
            hint=f"set data.shots_per_class={fewest} or less, or add rows of those classes",
        )
    kept = [index for name, found in sorted(by_class.items())
            for index in random.Random(f"shots {seed} {name}").sample(found, k)]
    return [rows[index] for index in sorted(kept)]
