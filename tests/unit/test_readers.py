"""Tests of ftcli.data.readers.read_rows: every file format, stdin, and errors that name the line."""

from __future__ import annotations

import io
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftcli.data.readers import read_rows, text_lines
from ftcli.errors import DataError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_jsonl(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n')
    assert read_rows(path, "data.train_file") == [{"text": "a", "label": 1}, {"text": "b", "label": "x"}]


def test_jsonl_skips_empty_and_blank_lines(tmp_path):
    path = write(tmp_path, "d.jsonl", '\n{"text": "a"}\n   \n\n{"text": "b"}\n\n')
    assert read_rows(path, "w") == [{"text": "a"}, {"text": "b"}]


def test_jsonl_malformed_line_names_line_number(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": "c",}\n{"text": "d"}\n')
    with pytest.raises(DataError, match="line 3") as info:
        read_rows(path, "data.train_file")
    assert info.value.message.startswith(f"data.train_file={path}: line 3 is not valid JSON")


def test_jsonl_line_number_counts_skipped_blank_lines(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a"}\n\n{oops\n')
    with pytest.raises(DataError, match="line 3 is not valid JSON"):
        read_rows(path, "w")


def test_jsonl_array_line_is_rejected(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a"}\n["text", "b"]\n')
    with pytest.raises(DataError, match="line 2 is a JSON list, not an object"):
        read_rows(path, "w")


@pytest.mark.parametrize(
    "text",
    [
        '[{"text": "a"}, {"text": "b"}]',
        '{"data": [{"text": "a"}, {"text": "b"}]}',
        '{"text": ["a", "b"]}',
    ],
    ids=["list", "data-key", "columns"],
)
def test_json_shapes(tmp_path, text):
    assert read_rows(write(tmp_path, "d.json", text), "w") == [{"text": "a"}, {"text": "b"}]


def test_json_columns_of_different_lengths(tmp_path):
    path = write(tmp_path, "d.json", '{"text": ["a", "b"], "label": [1]}')
    with pytest.raises(DataError, match=r"different lengths \[1, 2\]"):
        read_rows(path, "w")


def test_json_invalid_names_line(tmp_path):
    path = write(tmp_path, "d.json", '[\n{"text": "a"},\n{"text": }\n]')
    with pytest.raises(DataError, match="invalid JSON at line 3"):
        read_rows(path, "w")


def test_json_list_of_non_objects(tmp_path):
    with pytest.raises(DataError, match="expected a list of objects"):
        read_rows(write(tmp_path, "d.json", "[1, 2]"), "w")


def test_csv(tmp_path):
    path = write(tmp_path, "d.csv", 'text,label\n"hello, world",pos\nbye,neg\n')
    assert read_rows(path, "w") == [{"text": "hello, world", "label": "pos"}, {"text": "bye", "label": "neg"}]


def test_csv_skips_empty_lines(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\n\na,1\n\nb,2\n")
    assert read_rows(path, "w") == [{"text": "a", "label": "1"}, {"text": "b", "label": "2"}]


def test_csv_quoted_line_break_kept(tmp_path):
    path = write(tmp_path, "d.csv", 'text,label\n"two\nlines",1\n')
    assert read_rows(path, "w") == [{"text": "two\nlines", "label": "1"}]


def test_csv_wrong_field_count_names_line(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\na,1\nb,2\nc,d,3\n")
    with pytest.raises(DataError, match="line 4 has 3 fields, the header has 2") as info:
        read_rows(path, "data.train_file")
    assert info.value.hint == "quote fields that contain the delimiter or line breaks"


def test_csv_header_only_and_empty_file(tmp_path):
    assert read_rows(write(tmp_path, "h.csv", "text,label\n"), "w") == []
    assert read_rows(write(tmp_path, "e.csv", ""), "w") == []


def test_tsv(tmp_path):
    path = write(tmp_path, "d.tsv", "text\tlabel\na, b\t1\n")
    assert read_rows(path, "w") == [{"text": "a, b", "label": "1"}]


def test_txt_one_row_per_line_as_written(tmp_path):
    """Blank lines stay rows and nothing is stripped, so output rows line up with input lines."""
    path = write(tmp_path, "d.txt", "  first  \n\n   \nsecond\n")
    assert read_rows(path, "w") == [{"text": "  first  "}, {"text": ""}, {"text": "   "}, {"text": "second"}]
    assert read_rows(path, "w", text_column="sentence")[0] == {"sentence": "  first  "}


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", []),
        ("\n", [""]),
        ("a", ["a"]),
        ("a\n", ["a"]),
        ("a\n\n", ["a", ""]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\u2028b\x85c\u2029\n", ["a\u2028b\x85c\u2029"]),  # text, not line breaks
        ("\ttab \n", ["\ttab "]),
    ],
)
def test_txt_lines_lose_only_their_line_ending(text, lines):
    assert text_lines(text) == lines


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": [0, 1]}), path)
    assert read_rows(str(path), "w") == [{"text": "a", "label": 0}, {"text": "b", "label": 1}]


def test_parquet_unreadable(tmp_path):
    path = write(tmp_path, "d.parquet", "not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        read_rows(path, "w")


def test_suffix_is_case_insensitive(tmp_path):
    assert read_rows(write(tmp_path, "D.JSONL", '{"a": "b"}\n'), "w") == [{"a": "b"}]


def test_utf8_bom_is_dropped(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"text": "a"}\n')
    csv_file = tmp_path / "d.csv"
    csv_file.write_bytes(b"\xef\xbb\xbftext,label\na,1\n")
    assert read_rows(str(jsonl), "w") == [{"text": "a"}]
    assert read_rows(str(csv_file), "w") == [{"text": "a", "label": "1"}]


def test_non_utf8_names_line(tmp_path):
    path = tmp_path / "d.jsonl"
    data = b'{"text": "a"}\n{"text": "b"}\n{"text": "caf\xe9"}\n'
    assert data.index(b"\xe9") == 41
    path.write_bytes(data)
    with pytest.raises(DataError, match=r"line 3 is not valid UTF-8 \(byte offset 41\)") as info:
        read_rows(str(path), "w")
    assert info.value.hint == "re-save the file as UTF-8"


def test_non_utf8_after_bom_names_line(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes(b"\xef\xbb\xbfab\n\xff\n")  # the bad byte is on line 2, at byte offset 6
    with pytest.raises(DataError, match=r"line 2 is not valid UTF-8 \(byte offset 6\)"):
        read_rows(str(path), "w")


@pytest.mark.parametrize("separator", ["\u2028", "\u0085"])
def test_jsonl_value_with_unicode_line_separator(tmp_path, separator):
    row = {"text": f"a{separator}b"}
    path = write(tmp_path, "d.jsonl", json.dumps(row, ensure_ascii=False) + "\n")
    assert read_rows(path, "w") == [row]


def test_jsonl_deeply_nested_line_is_a_data_error(tmp_path):
    path = write(tmp_path, "d.jsonl", "[" * 100_000 + "\n")
    with pytest.raises(DataError, match="line 1"):
        read_rows(path, "w")


def test_missing_file(tmp_path):
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no such file") as info:
        read_rows(missing, "data.train_file")
    assert info.value.message == f"data.train_file={missing}: no such file"


def test_folder(tmp_path):
    folder = tmp_path / "d.jsonl"
    folder.mkdir()
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_rows(str(folder), "w")


def test_unsupported_suffix(tmp_path):
    path = write(tmp_path, "d.xlsx", "x")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'") as info:
        read_rows(path, "w")
    assert info.value.hint == "use one of: .jsonl, .json, .csv, .tsv, .txt, .parquet, .conll, .iob, .bio"


def test_stdin_plain_lines_are_rows_as_written(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("first line\n\n second \n"))
    assert read_rows("-", "input") == [{"text": "first line"}, {"text": ""}, {"text": " second "}]


def test_stdin_jsonl(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('\n{"text": "a", "id": 1}\n{"text": "b", "id": 2}\n'))
    assert read_rows("-", "input") == [{"text": "a", "id": 1}, {"text": "b", "id": 2}]


def test_stdin_jsonl_error_names_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"text": "a"}\n{"text"\n'))
    with pytest.raises(DataError, match="input=<stdin>: line 2 is not valid JSON"):
        read_rows("-", "input")


rows_strategy = st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4), max_size=6)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy)
def test_property_jsonl_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("rt") / "d.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert read_rows(str(path), "w") == rows


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60))
def test_property_arbitrary_jsonl_text_gives_dicts_or_data_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("any") / "d.jsonl"
    path.write_bytes(text.encode("utf-8"))
    try:
        rows = read_rows(str(path), "w")
    except DataError:
        return
    assert isinstance(rows, list)
    assert all(isinstance(row, dict) for row in rows)


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label,text\na,x,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"the header names 'text' more than once"):
        read_rows(str(path), "data.train_file")
