"""Features as bytes that read back with every type they had: no pickle, nothing run on reading.

A task's features (`ftcli.tasks.base.Feature`) are dicts of ints, floats, strings, bools, None,
lists and tuples of those, and ftcli's own frozen dataclasses (`RowNote`, `Words`, `Window`, ...).
They are written by column, as features of the same keys share a layout:

- a column of ints, or of lists of ints (token ids, masks), as flat arrays of the narrowest
  signed type that holds them, with the lists' lengths: read back with `array` at C speed, where
  JSON would parse every number;
- a column of one of ftcli's dataclasses, field by field, each field a column of its own;
- any other column as JSON, with tuples, non-string dict keys, dataclasses and enums tagged (a
  one-key object whose key starts with `$`: `{"$tuple": [...]}`, `{"$map": [[key, value], ...]}`,
  `{"$dataclass": "module:Name", "fields": {...}}`, `{"$enum": "module:Name", "value": ...}`), and
  every other dict written as itself unless one of its keys is not a string or starts with `$`.

Reading builds dataclasses and enums only from ftcli's own modules, by name, from their fields:
an entry can hold wrong data (the store's checksum catches that) but never make the reader run
any code but those classes' own constructors. Anything else (a numpy scalar, a tensor, a class from another package) is `Unencodable`,
and the caller keeps those features in memory only.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import json
import sys
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from functools import lru_cache
from itertools import accumulate
from typing import Any

SCALARS = frozenset({str, int, float, bool, type(None)})
PACKAGE = "ftcli"
TUPLE, MAP, DATACLASS, ENUM = "$tuple", "$map", "$dataclass", "$enum"
INT_CODES = ("b", "h", "i", "q")  # signed 8, 16, 32 and 64 bits (`array` type codes); the first that fits


class Unencodable(Exception):
    """A value this format cannot write so that it reads back the same."""


def encode_features(features: list[dict[str, Any]]) -> tuple[dict[str, Any], list[bytes]]:
    """`features` as a layout (plain JSON values) and the binary blobs it points into by index."""
    blobs: list[bytes] = []
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, feature in enumerate(features):
        groups.setdefault(tuple(feature), []).append(index)
    layout = []
    for keys, positions in groups.items():
        members = features if len(groups) == 1 else [features[i] for i in positions]
        columns = {key: _column([member[key] for member in members], blobs) for key in keys}
        every = len(groups) == 1
        layout.append({"keys": list(keys), "rows": None if every else _column(positions, blobs), "columns": columns})
    return {"count": len(features), "byteorder": sys.byteorder, "groups": layout}, blobs


def decode_features(layout: dict[str, Any], blobs: list[bytes]) -> list[dict[str, Any]]:
    """What `encode_features` wrote; ValueError (or TypeError, KeyError, ...) for anything else."""
    with _no_gc():  # millions of new lists and dicts, none in a cycle: collecting would only walk them
        return _decode(layout, blobs)


def _decode(layout: dict[str, Any], blobs: list[bytes]) -> list[dict[str, Any]]:
    if layout["byteorder"] != sys.byteorder:
        raise ValueError(f"written on a {layout['byteorder']}-endian machine")
    count = layout["count"]
    features: list[Any] = [None] * count
    for group in layout["groups"]:
        keys = group["keys"]
        positions = range(count) if group["rows"] is None else _values(group["rows"], blobs)
        columns = [_values(group["columns"][key], blobs) for key in keys]
        members = [dict(zip(keys, values)) for values in zip(*columns)] if keys else [{} for _ in positions]
        if len(members) != len(positions):
            raise ValueError("a group's columns and rows differ in length")
        for position, member in zip(positions, members):
            features[position] = member
    if any(feature is None for feature in features):
        raise ValueError("features missing from every group")
    return features


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _column(values: list[Any], blobs: list[bytes]) -> dict[str, Any]:
    """One column's spec, its data appended to `blobs`."""
    kinds = set(map(type, values))
    try:
        if kinds == {int}:
            return {"kind": "ints", "blob": _blob(values, blobs)}
        if kinds == {list} and all(set(map(type, value)) <= {int} for value in values):
            return {"kind": "int_lists", "blob": _blob([item for value in values for item in value], blobs),
                    "lengths": _blob(list(map(len, values)), blobs)}
    except OverflowError:  # beyond int64: written as JSON below
        pass
    if len(kinds) == 1 and values:
        kind = next(iter(kinds))
        if dataclasses.is_dataclass(kind) and kind.__module__.partition(".")[0] == PACKAGE:
            fields = dataclasses.fields(kind)
            if fields and all(field.init for field in fields):
                return {"kind": "dataclass", "type": _name(kind),
                        "fields": {f.name: _column([getattr(value, f.name) for value in values], blobs) for f in fields}}
    text = json.dumps([to_json_value(value) for value in values], ensure_ascii=False, separators=(",", ":"))
    blobs.append(text.encode("utf-8"))
    return {"kind": "json", "blob": len(blobs) - 1}


def _values(spec: dict[str, Any], blobs: list[bytes]) -> list[Any]:
    kind = spec["kind"]
    if kind == "ints":
        return _array(spec["blob"], blobs)
    if kind == "int_lists":
        flat, lengths = _array(spec["blob"], blobs), _array(spec["lengths"], blobs)
        ends = list(accumulate(lengths))
        if (ends[-1] if ends else 0) != len(flat) or any(length < 0 for length in lengths):
            raise ValueError("list lengths that do not add up to the values")
        return [flat[end - length:end] for end, length in zip(ends, lengths)]
    if kind == "dataclass":
        cls = _ftcli_type(spec["type"])
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"{spec['type']} is not a dataclass")
        names = list(spec["fields"])
        columns = [_values(spec["fields"][name], blobs) for name in names]
        return [cls(**dict(zip(names, args))) for args in zip(*columns)]
    if kind == "json":
        values = json.loads(blobs[spec["blob"]], object_hook=_from_tagged)
        if not isinstance(values, list):
            raise ValueError("a JSON column that is no list")
        return values
    raise ValueError(f"unknown column kind {kind!r}")


def _blob(values: list[int], blobs: list[bytes]) -> dict[str, Any]:
    """`values` appended to `blobs` as an array of the smallest signed type that holds them all."""
    low, high = (min(values), max(values)) if values else (0, 0)
    fits = [code for code in INT_CODES if -(1 << (8 * array(code).itemsize - 1)) <= low
            and high < 1 << (8 * array(code).itemsize - 1)]
    if not fits:
        raise OverflowError("beyond 64 bits")
    code = fits[0]
    blobs.append(array(code, values).tobytes())
    return {"index": len(blobs) - 1, "type": code}


def _array(spec: dict[str, Any], blobs: list[bytes]) -> list[int]:
    if spec["type"] not in INT_CODES:
        raise ValueError(f"unknown array type {spec['type']!r}")
    values = array(spec["type"])
    values.frombytes(blobs[spec["index"]])
    return values.tolist()


def to_json_value(value: Any, foreign: bool = False) -> Any:
    """`value` as plain JSON values, with tuples, non-string keys, dataclasses and enums tagged.

    `foreign=True` also takes dataclasses and enums from outside ftcli (for hashing a key; they
    cannot be read back).
    """
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is list:
        if set(map(type, value)) <= SCALARS:  # the common case (token ids), at C speed
            return value
        return [to_json_value(item, foreign) for item in value]
    if kind is dict:
        if all(type(key) is str and not key.startswith("$") for key in value):
            return {key: to_json_value(item, foreign) for key, item in value.items()}
        return {MAP: [[to_json_value(key, foreign), to_json_value(item, foreign)] for key, item in value.items()]}
    if kind is tuple:
        return {TUPLE: [to_json_value(item, foreign) for item in value]}
    if isinstance(value, Enum):
        return {ENUM: _name(kind, foreign), "value": to_json_value(value.value, foreign)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        if not foreign and not all(field.init for field in fields):
            raise Unencodable(f"{kind.__qualname__} has fields its constructor does not take")
        return {DATACLASS: _name(kind, foreign),
                "fields": {field.name: to_json_value(getattr(value, field.name), foreign) for field in fields}}
    raise Unencodable(f"a {kind.__module__}.{kind.__qualname__} value")


def _name(kind: type, foreign: bool = False) -> str:
    if not foreign and kind.__module__.partition(".")[0] != PACKAGE:
        raise Unencodable(f"{kind.__module__}.{kind.__qualname__} is not one of ftcli's types")
    return f"{kind.__module__}:{kind.__qualname__}"


def _from_tagged(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if TUPLE in obj:
            return tuple(obj[TUPLE])
        if MAP in obj:
            return {key: item for key, item in obj[MAP]}  # tuple keys are tuples again already
    elif len(obj) == 2:
        if DATACLASS in obj and "fields" in obj:
            kind = _ftcli_type(obj[DATACLASS])
            if not (dataclasses.is_dataclass(kind) and isinstance(obj["fields"], dict)):
                raise ValueError(f"{obj[DATACLASS]} is not a dataclass")
            return kind(**obj["fields"])
        if ENUM in obj and "value" in obj:
            kind = _ftcli_type(obj[ENUM])
            if not issubclass(kind, Enum):
                raise ValueError(f"{obj[ENUM]} is not an enum")
            return kind(obj["value"])
    return obj


@lru_cache(maxsize=None)
def _ftcli_type(name: Any) -> type:
    """The class `module:Qual.Name` from one of ftcli's modules; ValueError for any other."""
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"not a type name: {name!r}")
    module, _, qualname = name.partition(":")
    if module.partition(".")[0] != PACKAGE:
        raise ValueError(f"{name} is not one of ftcli's types")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, type):
        raise ValueError(f"{name} is not a class")
    return found
