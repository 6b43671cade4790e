"""Writing jsonl: one JSON object per line, read back as one row by every line splitter.

JSON lets U+2028, U+2029 and U+0085 stand unescaped in a string, but `str.splitlines`, many
JavaScript tools and some editors break lines at them, so a row holding one would read as two.
Every jsonl file ftcli writes (predictions, `train_log.jsonl`) goes through `jsonl_line`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\u2028\u2029\x85"}  # json.dumps escapes the rest (\n, \x1c, ...)


def jsonl_line(value: Any) -> str:
    """`value` as one line of jsonl, without the newline: text as UTF-8, line-breaking characters escaped."""
    # they can only occur inside JSON strings, where the escape reads back as the same character
    return json.dumps(value, ensure_ascii=False).translate(LINE_BREAKS)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """`rows` as a jsonl file at `path` (its folder made if missing), UTF-8, one `jsonl_line` each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(jsonl_line(row) + "\n" for row in rows), encoding="utf-8")
    return path
