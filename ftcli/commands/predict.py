"""`ftcli predict`: label inputs with a finished run; one jsonl line per input, in input order.

Each output line is the input row, untouched, plus the prediction's fields (`Task.prediction_fields`,
with `prediction_prefix=` in front) and, on the rows they concern, `"truncated": true` (the input
was cut at task.max_length) and `"empty": true` (it has no text). An input row that already holds
one of those names is refused before the model runs, rather than overwritten.

With several runs (`run_dir=[a,b,c]`) the predictions are their ensemble's (`ftcli.runs.ensemble`),
and `ensemble.json` in the job folder says which runs took part and how they were combined.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcli import ui
from ftcli.commands.summary import SHOWN, overrides_row, run_rows
from ftcli.config.schema import PredictConfig
from ftcli.data.jsonl import jsonl_line
from ftcli.data.readers import Row, read_rows
from ftcli.engine import processes
from ftcli.errors import ConfigError
from ftcli.files import write_text_atomic
from ftcli.runs.directory import RunDir, ensure_outside
from ftcli.runs.ensemble import Ensemble, load_ensemble
from ftcli.runs.trained import TrainedRun
from ftcli.tasks.notes import report, token_room

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, TextStreamer

log = logging.getLogger(__name__)
MARKS = ("truncated", "empty")  # added to the rows they concern: the input was cut, or has no text
PREFIXES = ("pred_", "predicted_", "ftcli_")  # suggested when the output's names are taken
ENSEMBLE = "ensemble.json"  # in the job folder: the runs of an ensemble and how they were combined


def run(cfg: PredictConfig, output_dir: Path) -> Path | None:
    if cfg.stream and cfg.output == "-":
        raise ConfigError(
            "stream=true writes the generated text to stdout as it is written, and output=- writes the jsonl there too",
            hint="give output= a file (the jsonl goes there), or drop stream=true",
        )
    if cfg.output not in (None, "-"):
        if Path(cfg.output).expanduser().is_dir():
            raise ConfigError(
                f"output={cfg.output} is a folder; predictions are written to one jsonl file",
                hint=f"name a file, e.g. output={Path(cfg.output) / 'predictions.jsonl'}, or output=- for stdout",
            )
        for run_dir in cfg.runs:
            example = str(Path(run_dir).resolve() / "predictions.jsonl")
            ensure_outside(Path(run_dir), Path(cfg.output), "output", example)
    if cfg.output == "-" or cfg.stream:
        ui.use_stderr()
    ensemble = load_ensemble(cfg.runs, cfg.ensemble)
    trained = ensemble.first
    if cfg.stream and trained.task.generation is None:
        raise ConfigError(
            f"stream=true only applies to tasks that generate; this run is task={trained.cfg.task.name}",
            hint="drop stream=true",
        )
    data = trained.cfg.data
    if cfg.text_column:
        data = replace(data, text_column=cfg.text_column)
    if cfg.text_pair_column:
        data = replace(data, text_pair_column=cfg.text_pair_column)
    ensemble = ensemble.each(lambda run: _with_generation(run.rebound(data=data), cfg))
    trained = ensemble.first
    output = "stdout" if cfg.output == "-" else cfg.output or str(output_dir / "predictions.jsonl")
    ui.print_summary(
        f"ftcli predict with {ensemble.name} → {output}",
        {**run_rows(trained.cfg), "input": "stdin" if cfg.input == "-" else cfg.input,
         **overrides_row(cfg, (*SHOWN, "run_dir", "input", "output"))},
    )
    from accelerate.utils import set_seed

    set_seed(cfg.seed)  # sampled generation (do_sample=true) repeats with the same seed
    rows = read_rows(cfg.input, "input", data.text_column)
    fields = (*trained.task.prediction_fields(), *MARKS)
    _refuse_taken_fields(rows, fields, cfg)
    predictions = _predict(ensemble, rows, cfg)
    _record(ensemble, output_dir)
    lines = "".join(
        jsonl_line({**row, **{cfg.prediction_prefix + k: v for k, v in pred.items()}}) + "\n"
        for row, pred in zip(rows, predictions)
    )
    if not processes.is_main():  # a distributed predict computes its shares on every rank; the main one writes
        return None
    if cfg.output == "-":
        sys.stdout.write(lines)
        sys.stdout.flush()
        return None
    target = Path(cfg.output).expanduser() if cfg.output else output_dir / "predictions.jsonl"
    try:
        write_text_atomic(target, lines)
    except OSError as exc:
        raise ConfigError(
            f"output={target} could not be written: {exc}",
            hint="name a jsonl file in a folder you can write to, or output=- for stdout",
        ) from exc
    ui.info(f"{len(rows)} predictions written to [bold]{target}[/]")
    return target


def _predict(ensemble: Ensemble, rows: list[dict[str, Any]], cfg: PredictConfig) -> list[dict[str, Any]]:
    if not rows:
        log.warning("input=%s has no rows; nothing to predict", cfg.input)
        return []
    trained, source = ensemble.first, f"input={cfg.input}"
    features = trained.task.encode(rows, source, with_labels=False)
    room = token_room(trained.model, trained.method.virtual_tokens(trained.cfg.method))
    notes = report(features, len(rows), source, source, trained.cfg.task.max_length, room, "predict", length_fixed=True)
    outputs = ensemble.outputs(rows, features, source, cfg.batch_size,
                               _streamer(trained.tokenizer) if cfg.stream else None)
    predictions = trained.task.predictions(outputs, features)
    return [
        {**prediction, **({"truncated": True} if note.cut else {}), **({"empty": True} if note.empty else {})}
        for prediction, note in zip(predictions, notes)
    ]


def _record(ensemble: Ensemble, output_dir: Path) -> None:
    """For an ensemble, which runs took part and how they were combined, in the job folder's ensemble.json."""
    record = ensemble.record()
    if record and processes.is_main():
        RunDir(output_dir).write_json(ENSEMBLE, record["ensemble"])
        ui.info(f"predictions by {ensemble.name}; the runs are recorded in [bold]{output_dir / ENSEMBLE}[/]")


def _refuse_taken_fields(rows: list[Row], fields: tuple[str, ...], cfg: PredictConfig) -> None:
    """A ConfigError when an input row already holds a field the prediction would be written to.

    Overwriting it would lose the input's value (a gold `label`, say) without a word, so the
    output's names are moved aside with `prediction_prefix=` instead.
    """
    written = {cfg.prediction_prefix + field for field in fields}
    for index, row in enumerate(rows):
        taken = sorted(written.intersection(row))
        if taken:
            names = {name for other in rows for name in other}
            prefix = next((p for p in PREFIXES if not names.intersection(p + f for f in fields)), PREFIXES[-1])
            raise ConfigError(
                f"input={cfg.input}: record {index} already has the field(s) {', '.join(map(repr, taken))}, "
                "which predict writes its prediction to",
                hint=f"keep the input's fields and name the prediction's apart: prediction_prefix={prefix} writes "
                f"{', '.join(prefix + field for field in fields)}",
            )


def _streamer(tokenizer: PreTrainedTokenizerBase) -> TextStreamer:
    """Prints each answer to stdout as its tokens are generated, one line per input."""
    from transformers import TextStreamer

    return TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _with_generation(trained: TrainedRun, cfg: PredictConfig) -> TrainedRun:
    """The run with `num_beams=` / `max_new_tokens=` from the command line in its generation settings."""
    settings = ("num_beams", "max_new_tokens", "do_sample", "temperature", "top_p")
    given = {k: getattr(cfg, k) for k in settings if getattr(cfg, k) is not None}
    if not given:
        return trained
    if trained.task.generation is None:
        raise ConfigError(
            f"{', '.join(given)} only apply to tasks that generate; this run is task={trained.cfg.task.name}",
            hint="drop them, or predict with a summarization, translation or instruction run",
        )
    generation = replace(trained.task.generation, **given)
    problems = generation.validate()
    if problems:
        raise ConfigError("; ".join(p.replace("task.generation.", "") for p in problems))
    task: Any = trained.cfg.task  # a generating task's settings, which hold `generation`
    return trained.rebound(task=replace(task, generation=generation))
