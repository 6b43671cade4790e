"""Tests of the CoNLL reader in ftcli.data.readers: sentences, document markers, extra columns, errors by line."""

from __future__ import annotations

import pytest

from ftcli.data.readers import read_rows
from ftcli.errors import DataError


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_sentences_are_blocks_of_token_tag_lines(tmp_path):
    path = write(tmp_path, "d.conll", "Ada B-PER\nsang O\n\n\nParis B-LOC\n.\tO\n")
    assert read_rows(path, "data.train_file") == [
        {"tokens": ["Ada", "sang"], "tags": ["B-PER", "O"]},
        {"tokens": ["Paris", "."], "tags": ["B-LOC", "O"]},
    ]


def test_conll2003_columns_docstart_and_crlf(tmp_path):
    text = (
        "-DOCSTART- -X- -X- O\r\n\r\n"
        "EU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\r\n"
        "-DOCSTART- -X- -X- O\r\n"
        "Peter NNP B-NP B-PER\r\nBlackburn NNP I-NP I-PER"  # no final newline
    )
    assert read_rows(write(tmp_path, "d.iob", text), "w") == [
        {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
        {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]},
    ]


def test_tokens_only_file_gives_rows_without_tags(tmp_path):
    assert read_rows(write(tmp_path, "d.bio", "Ada\nsang\n\nHi\n"), "input") == [
        {"tokens": ["Ada", "sang"]}, {"tokens": ["Hi"]},
    ]


def test_empty_file_has_no_rows(tmp_path):
    assert read_rows(write(tmp_path, "d.conll", "\n-DOCSTART- O\n\n"), "w") == []


def test_line_without_a_tag_names_its_line(tmp_path):
    path = write(tmp_path, "d.conll", "-DOCSTART- O\n\nAda B-PER\nsang O\n\nParis\n. O\n")
    with pytest.raises(DataError) as info:
        read_rows(path, "data.validation_file")
    assert info.value.message == (
        f"data.validation_file={path}: line 6 has 1 column(s) ('Paris'), but the lines before it hold a token and a tag"
    )
    assert "one `token tag` per line" in info.value.hint


def test_tagged_line_in_a_tokens_only_file_names_its_line(tmp_path):
    path = write(tmp_path, "d.conll", "Ada\nsang O\n")
    with pytest.raises(DataError, match="line 2 has 2 column\\(s\\) \\('sang O'\\), but the lines before it hold a token alone"):
        read_rows(path, "input")
