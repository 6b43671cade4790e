"""One ILF round on disk: the input rows, each stage streamed to its file, the resume guard, the results.

Every stage goes through the rows in input order, `chunk_size` at a time: it writes the field for
the rows of a chunk that lack it, appends one line per row to `<output>/<field>.jsonl` and syncs
the file before the next chunk. Run again after a kill, a stage reads back the lines it wrote
(dropping a last line the kill cut short) and continues at the first row without one; a stage
whose file is whole never loads its model. `round.json` holds a fingerprint of the input rows,
the sources and the settings that change what is written; a rerun that differs in any of them is
refused (`open_round`), since its rows would mix with the first round's.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ftcli import ui
from ftcli.config.schema import IlfConfig, plain
from ftcli.data.jsonl import jsonl_line
from ftcli.data.readers import Row, read_rows
from ftcli.engine.signals import StopRequest
from ftcli.errors import ConfigError, DataError, Interrupted, NothingToDo, RunDirError
from ftcli.files import write_text_atomic
from ftcli.runs.ilf_sources import FIELDS, INPUT, RoundRow, Source, Writer
from ftcli.tasks.instruction import normalise
from ftcli.tasks.notes import SHOWN_RECORDS, is_blank

RECORD = "round.json"
TRAIN = "train.jsonl"
OWN_FILES = (RECORD, TRAIN, *(f"{name}.jsonl" for name in FIELDS))  # what a round writes in its folder
SOURCE_SUFFIX = "_source"  # `output_source`: where each row's output came from
RESUME_HINT = "name a new output= folder for this round, or pass overwrite=true to start it afresh there"


def read_round_rows(path: str, prompt_column: str) -> list[RoundRow]:
    """The input rows, each with its prompt and the fields it holds already; a row without a prompt,
    with an empty one, or with a field that is not text is refused, naming the record."""
    rows = read_rows(path, "input", prompt_column)
    if not rows:
        raise DataError(f"input={path} has no rows", hint="give a file of prompts, one row each")
    read = []
    for index, row in enumerate(rows):
        where = f"input={path}: record {index}"
        prompt = row.get(prompt_column)
        if not isinstance(prompt, str):
            found = f"has a {type(prompt).__name__} in {prompt_column!r}" if prompt_column in row else \
                f"has no {prompt_column!r} column (it has: {', '.join(map(repr, row)) or 'none'})"
            raise DataError(f"{where} {found}", hint="set prompt_column to the input's column of prompts")
        if is_blank(prompt):
            raise DataError(f"{where}: the prompt is empty", hint="drop the row, or write its prompt")
        item = RoundRow(index, row, prompt)
        for name in FIELDS:
            value = row.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise DataError(f"{where}: {name!r} is {type(value).__name__}, not text",
                                hint=f"hold text in {name!r}, or drop the column to have the round write it")
            source = row.get(name + SOURCE_SUFFIX)
            item.values[name], item.sources[name] = value, source if isinstance(source, str) else INPUT
        read.append(item)
    return read


def fingerprint(rows: list[RoundRow], sources: dict[str, Source | None], cfg: IlfConfig) -> dict[str, Any]:
    """What makes two runs of the command the same round: the rows, each stage's source, and the
    settings that change what is written (not chunk_size or batch_size)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update((json.dumps(row.row, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
    settings = {"prompt_column": cfg.prompt_column, "id_column": cfg.id_column, "feedback_column": cfg.feedback_column,
                "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed}
    return {
        "input": digest.hexdigest(),
        **{name: None if source is None else {"source": source.name, "digest": source.identity()}
           for name, source in sources.items()},
        "settings": settings,
    }


def open_round(folder: Path, record: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The round's record, new or (when `folder` holds this same round, unfinished) the one it began
    with; written to `round.json` before any stage runs.

    Raises:
        ConfigError: `folder` holds a round of other rows, sources or settings, or files of its own names.
        NothingToDo: it holds this round, finished.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output={folder} is a file; a round writes a folder", hint="name a new or empty folder")
    if overwrite:
        for name in OWN_FILES:
            (folder / name).unlink(missing_ok=True)
    elif (folder / RECORD).is_file():
        before = _read_record(folder / RECORD)
        differs = [key for key, value in record["fingerprint"].items() if before["fingerprint"].get(key) != value]
        if differs:
            what = " and ".join(_difference(key, before["fingerprint"].get(key), record["fingerprint"][key])
                                for key in differs)
            raise ConfigError(
                f"output={folder} holds another round: this one has {what}; continuing that one would mix "
                "two rounds' rows",
                hint=RESUME_HINT,
            )
        if before.get("status") == "finished" and (folder / TRAIN).is_file():
            raise NothingToDo(f"output={folder} holds this round, finished: {folder / TRAIN} (overwrite=true writes "
                              "it again)")
        record = {**record, "started": before.get("started"), "resumed": [*before.get("resumed", []), now()]}
    elif any((folder / name).exists() for name in OWN_FILES):
        found = ", ".join(name for name in OWN_FILES if (folder / name).exists())
        raise ConfigError(f"output={folder} holds {found} but no {RECORD}, so not a round this command can continue",
                          hint=RESUME_HINT)
    folder.mkdir(parents=True, exist_ok=True)
    write_record(folder, record)
    return record


def new_record(cfg: IlfConfig, rows: list[RoundRow], sources: dict[str, Source | None]) -> dict[str, Any]:
    """`round.json` as a round starts: its settings and sources, and the fingerprint that guards resuming."""
    return {
        "status": "running",
        "input": str(Path(cfg.input).expanduser().resolve()) if cfg.input != "-" else "-",
        "rows": len(rows),
        "settings": plain(cfg),
        "stages": {name: {INPUT: True} if source is None else source.describe() for name, source in sources.items()},
        "fingerprint": fingerprint(rows, sources, cfg),
        "started": now(),
        "resumed": [],
    }


def write_record(folder: Path, record: dict[str, Any]) -> None:
    write_text_atomic(folder / RECORD, json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} could not be read: {exc}", hint=RESUME_HINT) from exc
    if not isinstance(record, dict) or not isinstance(record.get("fingerprint"), dict):
        raise RunDirError(f"{path} is not the record of an ilf round (it has no fingerprint)", hint=RESUME_HINT)
    return record


def _difference(key: str, before: Any, current: Any) -> str:
    """How this round differs from the one begun, in words: "other input rows", "another refine_run (that
    one's: /runs/a)", "seed=7 (that one's: 42)"."""
    if key == "input":
        return "other input rows"
    if key == "settings":
        old = before if isinstance(before, dict) else {}
        return ", ".join(f"{name}={_flow(current[name])} (that one's: {_flow(old.get(name))})"
                         for name in current if old.get(name) != current[name])
    setting = {"output": "policy_run", "feedback": "source of feedback", "refinement": "refine_run"}.get(key, key)
    that = before["source"] if isinstance(before, dict) else "the input rows'"
    return f"{'another' if current is not None else 'no'} {setting} (that one's: {that})"


def _flow(value: Any) -> str:
    return "null" if value is None else str(value)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StageFile:
    """`<output>/<field>.jsonl`: one line per input row, in input order, `{"row", <field>, "source"}`,
    appended a chunk at a time and synced."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / f"{name}.jsonl"
        self.name = name

    def read(self, rows: int) -> list[tuple[str, str]]:
        """The (text, source) of each row written before; a last line a kill cut short is dropped,
        from the file too, so that the next chunk starts on a line of its own."""
        if not self.path.is_file():
            return []
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        whole = lines[:-1]  # what follows the last newline was cut short (or is empty)
        if whole and self._entry(whole[-1], len(whole) - 1) is None:
            whole.pop()  # a last line the disk kept only in part
        kept = sum(len(line) + 1 for line in whole)
        if kept < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(kept)
                os.fsync(handle.fileno())
        written = []
        for number, line in enumerate(whole):
            entry = self._entry(line, number)
            if entry is None or number >= rows:
                raise RunDirError(f"{self.path}: line {number + 1} is not row {number}'s {self.name} as this round "
                                  "writes it", hint=RESUME_HINT)
            written.append(entry)
        return written

    def _entry(self, line: bytes, number: int) -> tuple[str, str] | None:
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("row") != number:
            return None
        text, source = entry.get(self.name), entry.get("source")
        return (text, source) if isinstance(text, str) and isinstance(source, str) else None

    def append(self, rows: list[RoundRow]) -> None:
        lines = "".join(
            jsonl_line({"row": row.index, self.name: row.values[self.name], "source": row.sources[self.name]}) + "\n"
            for row in rows
        )
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())


@dataclass(frozen=True)
class StageDone:
    """How many rows one stage found written by an earlier run of the command, and how many it wrote now."""

    before: int
    written: int


def stopped(folder: Path) -> Interrupted:
    """The error of a round stopped by Ctrl-C or SIGTERM: what it wrote is kept, and the same command continues."""
    return Interrupted(
        f"stopped; the rows written so far are kept in {folder}",
        hint="run the same command again: each stage continues at its first row without a line",
    )


def run_stage(name: str, source: Source | None, rows: list[RoundRow], folder: Path, chunk_size: int,
              seed: int, stop: StopRequest) -> StageDone:
    """Fill field `name` of every row, continuing after the rows its file has; the source opens
    (a run's model loads) only when a row still lacks the field. A signal `stop` caught ends the
    stage once the chunk it came during is written."""
    file = StageFile(folder, name)
    written = file.read(len(rows))
    for row, (text, origin) in zip(rows, written):
        row.values[name], row.sources[name] = text, origin
    start = len(written)
    if start == len(rows):
        ui.info(f"[bold]{name}[/]: all {len(rows)} rows written before")
        return StageDone(start, 0)
    if start:
        ui.info(f"[bold]{name}[/]: {start} of {len(rows)} rows written before; continuing at row {start}")
    with ExitStack() as stack:
        writer: Writer | None = None
        for first in range(start, len(rows), chunk_size):
            chunk = rows[first:first + chunk_size]
            needed = [row for row in chunk if name not in row.values]
            if needed:
                if source is None:  # `round_sources` refuses rows that no source fills
                    raise ConfigError(f"record {needed[0].index} has no {name!r}, and nothing writes one")
                writer = writer or stack.enter_context(source.open())
                for row, text in zip(needed, writer(needed, seed + first)):
                    row.values[name], row.sources[name] = text, source.name
            file.append(chunk)
            ui.info(f"[bold]{name}[/]: {first + len(chunk)}/{len(rows)} rows"
                    + (f" ({source.name})" if needed and source is not None else ""))
            if stop.signal is not None:
                raise stopped(folder)
    return StageDone(start, len(rows) - start)


def training_rows(rows: list[RoundRow]) -> list[Row]:
    """Each input row with the prompt, the three fields and where each came from: the rows of `train.jsonl`."""
    return [
        {**row.row, "prompt": row.prompt, **{name: row.values[name] for name in FIELDS},
         **{name + SOURCE_SUFFIX: row.sources[name] for name in FIELDS}}
        for row in rows
    ]


def write_training_file(folder: Path, rows: list[RoundRow]) -> Path:
    target = folder / TRAIN
    write_text_atomic(target, "".join(jsonl_line(row) + "\n" for row in training_rows(rows)))
    return target


def unfit_rows(rows: list[RoundRow]) -> dict[str, list[int]]:
    """The rows that teach nothing, by why: a refinement that changed nothing (ignoring case and
    spacing), or feedback that says nothing. `task=feedback` leaves them out; `task=preference`
    refuses a pair of equal answers."""
    return {
        "refinement_equal_to_output": [r.index for r in rows if normalise(r.values["refinement"])
                                       == normalise(r.values["output"])],
        "empty_feedback": [r.index for r in rows if is_blank(r.values["feedback"])],
    }


def warn_unfit(unfit: dict[str, list[int]], total: int) -> None:
    """One warning per kind of unfit row, with the count and the first record numbers."""
    said = {
        "refinement_equal_to_output": "have a refinement equal to their output: task=feedback leaves them out of "
        "training, and task=preference refuses them",
        "empty_feedback": "have empty feedback: task=feedback leaves them out of training, except with "
        "task.objective=imitate",
    }
    for kind, found in unfit.items():
        if found:
            shown = ", ".join(map(str, found[:SHOWN_RECORDS])) + (", ..." if len(found) > SHOWN_RECORDS else "")
            ui.warn(f"{len(found)} of {total} rows (rows {shown}) {said[kind]}")
