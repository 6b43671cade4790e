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
import re
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
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # \uD800-\uDFFF: half of a UTF-16 pair, or both
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # what json.loads leaves of a half with no other half
HALF_PAIR = "half of a UTF-16 surrogate pair without its other half, which is not text"
HALF_PAIR_HINT = "write the character itself, or its whole pair (\\ud83d\\ude00, not \\ud83d alone)"

Row = dict[str, Any]


def read_rows(path: str, what: str, text_column: str = "text") -> list[Row]:
    """Read a local file (or '-' for stdin) into a list of dicts.

    `.txt` files (and stdin that is not jsonl) give one row per line under `text_column`
    (`text_lines`). `what` names the setting the path came from, for error messages.
    """
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)  # bytes, so that bad UTF-8 gets the same message as in a file
        text = sys.stdin.read() if stdin is None else _decode(stdin.read(), what, path)
        return _rows_from_text(text, "<stdin>", "auto", what, text_column)
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
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise DataError(
            f"{what}={path} could not be read: {exc.strerror or exc}",
            hint="check that the file is readable by this user (permissions, a broken link or mount)",
        ) from exc
    return _rows_from_text(_decode(raw, what, path), path, fmt, what, text_column)


def _decode(raw: bytes, what: str, path: str) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or a DataError naming the first bad line."""
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[start : start + exc.start].count(b"\n") + 1
        raise DataError(
            f"{what}={path}: line {line} is not valid UTF-8 (byte offset {start + exc.start})",
            hint="re-save the file as UTF-8",
        ) from exc


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
    return [{text_column: line} for line in text_lines(text)]


def text_lines(text: str) -> list[str]:
    """Every line of a text file as it is, without its line ending (`\n` or `\r\n`).

    Blank lines stay rows and no line is stripped, so output row N belongs to input line N + 1;
    a final line ending adds no row. Only `\n` ends a line: `str.splitlines` would also break at
    U+2028, U+0085 and other characters that are text.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _parse_jsonl(text: str, source: str, what: str) -> list[Row]:
    rows = []
    # Split on "\n" only: str.splitlines() also breaks at U+2028/U+0085, which JSON strings may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DataError(
                f"{what}={source}: line {number} is not valid JSON ({_why_not_json(exc)})",
                hint="each line of a .jsonl file must be one JSON object",
            ) from exc
        if not isinstance(row, dict):
            raise DataError(
                f"{what}={source}: line {number} is a JSON {type(row).__name__}, not an object",
                hint='each line must look like {"text": "...", "label": "..."}',
            )
        if SURROGATE_ESCAPE.search(line) and (escape := _lone_surrogate(row)):
            raise DataError(f"{what}={source}: line {number} holds {escape}, {HALF_PAIR}", hint=HALF_PAIR_HINT)
        rows.append(row)
    return rows


def _parse_json(text: str, source: str, what: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{what}={source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{what}={source}: invalid JSON: {_why_not_json(exc)}") from exc
    if SURROGATE_ESCAPE.search(text) and (escape := _lone_surrogate(data)):
        raise DataError(f"{what}={source}: a string holds {escape}, {HALF_PAIR}", hint=HALF_PAIR_HINT)
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


def _why_not_json(exc: ValueError | RecursionError) -> str:
    """What stopped json.loads: a syntax error, nesting past the recursion limit, or an overlong integer."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    # int() refuses longer digit strings (CVE-2020-10735); json.loads raises its plain ValueError
    return f"a number has more than {sys.get_int_max_str_digits()} digits; write it as a string"


def _lone_surrogate(value: Any) -> str | None:
    """The `\\uXXXX` escape of a lone surrogate in a parsed JSON value's strings (keys too), else None.

    json.loads joins an escaped pair into one character but keeps half a pair as it is: a string
    that UTF-8 cannot encode and tokenizers reject.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found = LONE_SURROGATE.search(item)
            if found:
                return f"\\u{ord(found.group()):04x}"
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def _parse_csv(text: str, source: str, what: str, delimiter: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise DataError(f"{what}={source}: line 1: {exc}") from exc
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:  # a row dict keeps one of them: the other column would vanish unseen
        raise DataError(
            f"{what}={source}: the header names {', '.join(map(repr, repeated))} more than once",
            hint="give every column its own name in the first line",
        )
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
