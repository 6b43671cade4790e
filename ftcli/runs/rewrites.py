"""Rewrites of the training texts by finished seq2seq runs: a paraphrase, or a back-translation.

`data.augment.rewrite_runs` names finished `summarization` or `translation` runs. Every training
text goes through them in order (one run: a paraphrase; two: a translation there and back), each
run reading it under its own `data.text_column` and `task.source_prefix`, writing greedily (one
beam, no sampling) with its other `task.generation` settings, in its own batches and precision.
A pair row has each of its texts rewritten. A row's rewrite is a new training row when one of its
texts came back changed (ignoring case and spacing); an empty rewrite keeps the text it came from.

The runs are checked from their configs before any model loads (`check_rewrite_runs`), and loaded
one at a time. What they wrote is kept in the run directory (`rewrites.json`) with a fingerprint
of the texts and of the runs (each one's directory, config and final metrics): a resumed run reads
the rewrites back instead of generating them again, and a file whose fingerprint differs from
this run's is written again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ftcli import ui
from ftcli.data.readers import Row
from ftcli.engine.resources import release_memory
from ftcli.errors import ConfigError
from ftcli.files import write_text_atomic
from ftcli.runs.directory import RunDir, finished_run
from ftcli.runs.trained import load_trained
from ftcli.tasks.generating import GENERATED
from ftcli.tasks.instruction import normalise
from ftcli.tasks.notes import is_blank, row_notes
from ftcli.tasks.pipeline import row_predictions
from ftcli.tasks.seq2seq import Seq2SeqConfig

SETTING = "data.augment.rewrite_runs"
DECODING = "greedy"  # one beam, no sampling: the same texts and runs always write the same rewrites


@dataclass(frozen=True)
class RewriteRun:
    """A finished seq2seq run that rewrites texts, read from its config alone."""

    setting: str  # data.augment.rewrite_runs[i]
    path: Path  # absolute
    task: Seq2SeqConfig  # the run's own task settings: its source prefix, lengths and generation

    @classmethod
    def check(cls, index: int, path: str) -> RewriteRun:
        """The run at `path`, refused unless `ftcli train` finished it on a text-to-text task."""
        setting = f"{SETTING}[{index}]"
        run, cfg = finished_run(setting, path)
        if not isinstance(cfg.task, Seq2SeqConfig):
            raise ConfigError(
                f"{setting}={path} is a task={cfg.task.name} run; rewriting needs a task=summarization or "
                "task=translation run, whose model writes a text from a text",
                hint="train one on pairs of a text and its paraphrase (or translation), e.g. "
                     "`ftcli train task=translation data.train_file=...`",
            )
        return cls(setting, run.path, cfg.task)

    def describe(self) -> dict[str, str]:
        """Its part of the fingerprint: where it is, and a digest of what it was trained as and scored."""
        return {"run_dir": str(self.path), "digest": RunDir(self.path).identity()}

    def rewrite(self, texts: dict[str, list[str]]) -> dict[str, list[str]]:
        """Each column's texts as this run writes them, the model loaded for the call and released after."""
        task = self.task
        greedy = replace(task.generation, num_beams=1, do_sample=False)
        trained = load_trained(self.path).rebound(task=replace(task, generation=greedy))
        column = trained.cfg.data.text_column
        written = {}
        try:
            for name, column_texts in texts.items():
                ui.info(f"rewriting {len(column_texts)} {name!r} texts with {self.path}")
                features = trained.task.encode([{column: text} for text in column_texts],
                                               f"the {name!r} texts {self.setting} rewrites", with_labels=False)
                cut = sum(note.cut for note in row_notes(features, len(column_texts)))
                if cut:
                    ui.warn(f"{self.setting}: {cut} of {len(column_texts)} {name!r} texts were longer than its "
                            f"task.max_length={task.max_length} tokens and were rewritten from their start only")
                trainer = trained.cfg.trainer
                predictions = row_predictions(trained.task, trained.model, features, trainer.eval_batch_size,
                                              trainer.precision)
                written[name] = [str(prediction[GENERATED]) for prediction in predictions]
        finally:
            del trained
            release_memory()
        return written


def check_rewrite_runs(paths: list[str]) -> list[RewriteRun]:
    """Every run `data.augment.rewrite_runs` names, checked in order before any of them loads."""
    return [RewriteRun.check(index, path) for index, path in enumerate(paths)]


@dataclass(frozen=True)
class Rewritten:
    """The new rows, and whether their texts came from the run directory's cache."""

    rows: list[Row]
    cached: bool


def rewrite_rows(rows: list[Row], columns: list[str], runs: list[RewriteRun], cache: Path) -> Rewritten:
    """One rewrite of each row whose `columns` hold text, through `runs` in order, as new rows that
    keep the row's label and other columns; only rows with a changed text are returned.

    The rewritten texts are read from `cache` when it was written for these texts and runs, and
    written to it otherwise.
    """
    kept = [row for row in rows if all(isinstance(row.get(column), str) for column in columns)]
    texts = {column: [row[column] for row in kept] for column in columns}
    if not kept or not runs:
        return Rewritten([], False)
    fingerprint = _fingerprint(texts, runs)
    written = _read_cache(cache, fingerprint, texts)
    cached = written is not None
    if written is None:
        written = texts
        for run in runs:
            written = run.rewrite(written)
        write_text_atomic(cache, json.dumps({"fingerprint": fingerprint, "texts": written}, ensure_ascii=False) + "\n")
    made = []
    for index, row in enumerate(kept):
        new = {column: written[column][index] for column in columns if not is_blank(written[column][index])}
        if any(normalise(text) != normalise(row[column]) for column, text in new.items()):
            made.append({**row, **new})
    return Rewritten(made, cached)


def _fingerprint(texts: dict[str, list[str]], runs: list[RewriteRun]) -> dict[str, Any]:
    """What the rewrites depend on: the texts, each run in order, and the decoding."""
    digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()
    return {"texts": digest, "runs": [run.describe() for run in runs], "decoding": DECODING}


def _read_cache(cache: Path, fingerprint: dict[str, Any], texts: dict[str, list[str]]) -> dict[str, list[str]] | None:
    """The cached rewrites when `cache` holds them for `fingerprint`, one text for each of `texts`;
    None, saying why, when it holds other ones or cannot be read."""
    if not cache.is_file():
        return None
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("fingerprint") != fingerprint:
        ui.info(f"{cache} holds the rewrites of other texts or runs; writing them again")
        return None
    written = data.get("texts") if isinstance(data, dict) else None
    found: dict[str, list[str]] = {}
    for column, given in texts.items():
        entry = written.get(column) if isinstance(written, dict) else None
        if not (isinstance(entry, list) and len(entry) == len(given) and all(isinstance(t, str) for t in entry)):
            ui.warn(f"{cache} could not be read as this run's rewrites; writing them again")
            return None
        found[column] = entry
    return found
