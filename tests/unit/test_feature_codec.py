"""Tests of the features' on-disk codec: every type comes back as it was, and reading runs nothing foreign."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest

from ftcli.data.feature_codec import Unencodable, decode_features, encode_features, to_json_value
from ftcli.tasks.grpo_step import Prompt
from ftcli.tasks.notes import RowNote
from ftcli.tasks.qa_windows import Window
from ftcli.tasks.tag_schemes import TagScheme


def round_trip(features):
    layout, blobs = encode_features(features)
    return decode_features(layout, blobs)


def assert_same(got, expected):
    """Equal, and of the same types all the way down (`==` takes 1 for True and (1,) for [1] apart only partly)."""
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_same(got[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_same(a, b)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got)
    elif isinstance(expected, float):
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected)
    else:
        assert got == expected


def test_every_value_type_comes_back_with_its_type():
    features = [
        {
            "input_ids": [101, 2023, 102], "labels": 1, "flag": True, "none": None, "ratio": 0.1,
            "pair": ([1, 2], [-100, 3]), "nested": [[1, 2], [3]], "text": "é ✓\n", "mixed": [1, True, None, 2.5],
            "int_keys": {1: "a", 2: "b"}, "dollar": {"$tuple": [1]}, "note": RowNote(0, cut=True),
            "window": Window(0, "a text", [None, (0, 1), (2, 6)], 0, ["text"]), "scheme": TagScheme.iobes,
            "prompt": Prompt("hi", {"notes": [RowNote(3)], "spans": {(0, 1): -0.0}}),
            "big": 2 ** 70, "specials": [math.inf, -math.inf, math.nan, 1e-300, -0.0], "empty": [],
        },
        {
            "input_ids": [101, 102], "labels": 0, "flag": False, "none": None, "ratio": 2.0,
            "pair": ([], []), "nested": [[]], "text": "", "mixed": [], "int_keys": {}, "dollar": {},
            "note": RowNote(1), "window": Window(1, "", [], 0), "scheme": TagScheme.iob2, "big": -1,
            "prompt": Prompt("", {}),
            "specials": [], "empty": [],
        },
    ]
    assert_same(round_trip(features), features)


def test_features_of_other_keys_keep_their_order_and_keys():
    features = [{"a": 1}, {"a": 2, "b": [3]}, {"b": [4], "a": 5}, {"a": 6}, {}]
    assert_same(round_trip(features), features)
    assert round_trip([]) == []


def test_token_ids_are_stored_in_the_narrowest_type_that_holds_them():
    small = encode_features([{"ids": [1, 2, 3]}] * 100)[1]
    wide = encode_features([{"ids": [1, 2, 70_000]}] * 100)[1]
    assert sum(map(len, small)) * 3 < sum(map(len, wide))
    assert round_trip([{"ids": [-(2 ** 63), 2 ** 63 - 1]}]) == [{"ids": [-(2 ** 63), 2 ** 63 - 1]}]


@pytest.mark.parametrize("value", [pytest.param(object(), id="object"), pytest.param({1, 2}, id="set"),
                                   pytest.param(b"bytes", id="bytes")])
def test_a_value_that_cannot_come_back_the_same_is_refused(value):
    with pytest.raises(Unencodable):
        encode_features([{"x": value}])


def test_numpy_values_and_foreign_dataclasses_are_refused():
    import numpy as np

    @dataclass
    class Foreign:  # defined in this test module, not in ftcli
        x: int

    for value in (np.int64(3), np.array([1, 2]), Foreign(1)):
        with pytest.raises(Unencodable):
            encode_features([{"x": value}])
        with pytest.raises(Unencodable):
            encode_features([{"x": [value]}])


def test_reading_builds_only_ftcli_types():
    layout, blobs = encode_features([{"note": [RowNote(0)]}])  # a list of notes: a JSON column
    tampered = [blob.replace(b"ftcli.tasks.notes:RowNote", b"subprocess:Popen") for blob in blobs]
    with pytest.raises(ValueError, match="not one of ftcli's types"):
        decode_features(layout, tampered)
    by_column = encode_features([{"note": RowNote(0)}])[0]  # a column of notes: field by field
    by_column["groups"][0]["columns"]["note"]["type"] = "os:system"
    with pytest.raises(ValueError, match="not one of ftcli's types"):
        decode_features(by_column, blobs)


def test_lengths_that_do_not_match_their_values_are_refused():
    layout, blobs = encode_features([{"ids": [1, 2, 3]}, {"ids": [4]}])
    with pytest.raises(ValueError):
        decode_features(layout, [blobs[0][:-1], *blobs[1:]])


def test_keys_tell_apart_what_plain_json_would_not():
    def text(value):
        return json.dumps(to_json_value(value))

    assert text([1, 2]) != text((1, 2))
    assert text({1: "a"}) != text({"1": "a"})
    assert text(TagScheme.iob2) != text("iob2")
    assert text([True]) != text([1])
