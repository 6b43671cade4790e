"""Tests of ftcli.data.jsonl: one line per object for every line splitter, and the same values read back."""

from __future__ import annotations

import json

import pytest

from ftcli.data.jsonl import jsonl_line


@pytest.mark.parametrize("text", ["a\u2028b", "a\u2029b", "a\x85b", "a\nb\rc", "a\x1cb\x1dc\x1ed\x0be\x0cf"])
def test_line_breaking_characters_are_escaped(text):
    line = jsonl_line({"text": text, text: [text]})
    assert len(line.splitlines()) == 1 and len(line.split("\n")) == 1
    assert json.loads(line) == {"text": text, text: [text]}


def test_other_text_stays_as_written():
    assert jsonl_line({"text": "café 😀", "n": 1}) == '{"text": "café 😀", "n": 1}'
