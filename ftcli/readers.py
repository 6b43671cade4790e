"""Reading local data files into rows, with errors that name the file, the line and the fix.

`datasets`' own json and csv builders report a malformed line as a pyarrow parse error with no
line number, and a missing column only deep inside a map; these readers exist to say exactly
which line of which file is wrong. Parquet goes through `datasets` unchanged.

`.conll`, `.iob` and `.bio` files are read as CoNLL columns (one `token ... tag` line per word,
a blank line between sentences) into pre-tokenised rows for tagging tasks.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from ftcli.errors import DataError

SUFFIXES = {
    ".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "txt", ".parquet": "parquet",
    ".conll": "conll", ".iob": "conll", ".bio": "conll",
}
CONLL_TOKENS, CONLL_TAGS = "tokens", "tags"  # the columns of a row read from a CoNLL file
DOCSTART = "-DOCSTART-"

Row = dict[str, Any]


def read_rows(path: str, what: str, text_column: str = "text") -> list[Row]:
    """Read a local file (or '-' for stdin) into a list of dicts.

    `.txt` files (and stdin that is not jsonl) give one row per non-empty line under
    `text_column`. `what` names the setting the path came from, for error messages.
    """
    if path == "-":
        return _rows_from_text(sys.stdin.read(), "<stdin>", "auto", what, text_column)
    file = Path(path).expanduser()
    if not file.exists():
        raise DataError(f"{what}={path}: no such file", hint=f"check the path (relative paths start at {Path.cwd()})")
    if file.is_dir():
        raise DataError(
            f"{what}={path} is a folder, not a file", hint="name a .jsonl/.json/.csv/.tsv/.txt/.parquet/.conll file"
        )
    fmt = SUFFIXES.get(file.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{what}={path}: unsupported file type {file.suffix!r}",
            hint=f"use one of: {', '.join(SUFFIXES)}",
        )
    if fmt == "parquet":
        return _read_parquet(file, what)
    raw = file.read_bytes()
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[start : start + exc.start].count(b"\n") + 1
        raise DataError(
            f"{what}={path}: line {line} is not valid UTF-8 (byte offset {start + exc.start})",
            hint="re-save the file as UTF-8",
        ) from exc
    return _rows_from_text(text, path, fmt, what, text_column)


def _rows_from_text(text: str, source: str, fmt: str, what: str, text_column: str) -> list[Row]:
    if fmt == "auto":
        first = next((line for line in text.split("\n") if line.strip()), "")
        fmt = "jsonl" if first.lstrip().startswith("{") else "txt"
    if fmt == "jsonl":
        return _parse_jsonl(text, source, what)
    if fmt == "json":
        return _parse_json(text, source, what)
    if fmt in ("csv", "tsv"):
        return _parse_csv(text, source, what, "\t" if fmt == "tsv" else ",")
    if fmt == "conll":
        return _parse_conll(text, source, what)
    return [{text_column: line} for line in (raw.strip() for raw in text.split("\n")) if line]


def _parse_jsonl(text: str, source: str, what: str) -> list[Row]:
    rows = []
    # Split on "\n" only: str.splitlines() also breaks at U+2028/U+0085, which JSON strings may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise DataError(
                f"{what}={source}: line {number} is not valid JSON ({reason})",
                hint="each line of a .jsonl file must be one JSON object",
            ) from exc
        if not isinstance(row, dict):
            raise DataError(
                f"{what}={source}: line {number} is a JSON {type(row).__name__}, not an object",
                hint='each line must look like {"text": "...", "label": "..."}',
            )
        rows.append(row)
    return rows


def _parse_json(text: str, source: str, what: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{what}={source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        lengths = {len(v) for v in data.values()}
        if len(lengths) != 1:
            raise DataError(f"{what}={source}: the columns have different lengths {sorted(lengths)}")
        keys = list(data)
        return [dict(zip(keys, values)) for values in zip(*data.values())]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise DataError(
            f"{what}={source}: expected a list of objects, a {{column: [values]}} object, or {{\"data\": [...]}}",
        )
    return data


def _parse_csv(text: str, source: str, what: str, delimiter: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise DataError(f"{what}={source}: line 1: {exc}") from exc
    rows = []
    try:
        for values in reader:
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DataError(
                    f"{what}={source}: line {reader.line_num} has {len(values)} fields, the header has {len(header)}",
                    hint="quote fields that contain the delimiter or line breaks",
                )
            rows.append(dict(zip(header, values)))
    except csv.Error as exc:
        raise DataError(f"{what}={source}: line {reader.line_num}: {exc}") from exc
    return rows


def _parse_conll(text: str, source: str, what: str) -> list[Row]:
    """CoNLL columns: one sentence per block of lines, `{"tokens": [...], "tags": [...]}` per sentence.

    Each line holds a token first and its tag last, separated by whitespace (CoNLL-2003's POS and
    chunk columns in between are ignored); a blank line ends a sentence and `-DOCSTART-` lines
    are skipped. A file whose lines hold a token alone (input to `predict`) gives rows without
    tags; mixing the two is an error at the first line that differs.
    """
    rows: list[Row] = []
    tokens: list[str] = []
    tags: list[str] = []
    tagged: bool | None = None  # whether lines carry a tag, decided by the first token line

    def end_sentence() -> None:
        if tokens:
            rows.append({CONLL_TOKENS: list(tokens), **({CONLL_TAGS: list(tags)} if tagged else {})})
            tokens.clear()
            tags.clear()

    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            end_sentence()
            continue
        if tagged is None:
            tagged = len(fields) > 1
        if tagged != (len(fields) > 1):
            earlier = "a token and a tag" if tagged else "a token alone"
            raise DataError(
                f"{what}={source}: line {number} has {len(fields)} column(s) ({line.strip()!r}), "
                f"but the lines before it hold {earlier}",
                hint="write one `token tag` per line (columns separated by spaces or tabs; a token "
                "cannot contain whitespace) and a blank line between sentences",
            )
        tokens.append(fields[0])
        if tagged:
            tags.append(fields[-1])
    end_sentence()
    return rows


def _read_parquet(file: Path, what: str) -> list[Row]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(file).to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{what}={file}: not a readable parquet file ({exc})") from exc
