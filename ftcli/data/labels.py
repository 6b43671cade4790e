"""The class a classification row belongs to, as the name its label set knows it by.

Labels may be written as names or integers (`1`, `1.0` and `true` are all class `"1"`); one
place turns a raw label into its class name, so that the label set a task builds and the rows
`data.shots_per_class` draws of each class agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ftcli.errors import DataError

INTEGER = re.compile(r"-?[0-9]+")


def single_label(value: Any, source: str, index: int, column: str) -> str:
    """The class name of one row's label; null, empty, list and object labels are data errors
    naming the record."""
    if isinstance(value, (list, dict)):
        hint = ("for several labels per row use task.problem=multi_label" if isinstance(value, list)
                else "write the label as a name or an integer")
        raise DataError(f"{source}: record {index} has {column}={value!r}, not a single label", hint=hint)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(
            f"{source}: record {index} has no label ({column} is {value!r})",
            hint="give every training row a label, or drop the rows without one",
        )
    return label_key(value)


def class_name(key: str, names: Sequence[str] | None) -> str:
    """The class a label key stands for: itself, or with `data.label_names` given, the name an
    integer label indexes when it is not a name itself (as classification reads it)."""
    if names is None or key in names or not INTEGER.fullmatch(key) or not 0 <= int(key) < len(names):
        return key
    return names[int(key)]


def label_key(value: Any) -> str:
    """The label-set name of a raw label: integers (also 1.0 floats and booleans) as digits, text as is."""
    if isinstance(value, (bool, int)) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return str(value)
