"""`ftcli ilf`: one round of imitation learning from language feedback (ILF) on new prompts.

The policy run writes an output for each prompt, a critique run (or the people who wrote
`feedback_file`) gives feedback on it, and the refine run writes a refinement that follows the
feedback. The round writes `train.jsonl`, the rows that `ftcli train task=feedback
task.objective=imitate` learns from, and `round.json`, its record. The stages run one after
another, each loading its run only while it writes (`ftcli.runs.ilf_sources`), and each streams
its rows to a file of its own, so the same command run again after a kill continues where it
stopped (`ftcli.runs.ilf_round`).
"""

from __future__ import annotations

from pathlib import Path

from ftcli import ui
from ftcli.commands.summary import overrides_row
from ftcli.config.schema import IlfConfig
from ftcli.engine.signals import StopRequest
from ftcli.runs.directory import ensure_outside
from ftcli.runs.ilf_round import (
    new_record,
    now,
    open_round,
    read_round_rows,
    run_stage,
    stopped,
    unfit_rows,
    warn_unfit,
    write_record,
    write_training_file,
)
from ftcli.runs.ilf_sources import FIELDS, FeedbackFile, RunSource, Source, round_sources

SHOWN = ("input", "output", "policy_run", "critique_run", "feedback_file", "refine_run")  # rows of their own


def run(cfg: IlfConfig, output_dir: Path) -> Path:
    folder = Path(cfg.output).expanduser().resolve()
    rows = read_round_rows(cfg.input, cfg.prompt_column)
    sources = round_sources(cfg, rows)
    for source in sources.values():
        if isinstance(source, RunSource):
            ensure_outside(source.path, folder, "output", str(source.path.parent / f"{source.path.name}-ilf"))
    record = open_round(folder, new_record(cfg, rows, sources), cfg.overwrite)
    ui.print_summary(
        f"ftcli ilf on {cfg.input} → {folder}",
        {"rows": str(len(rows)), **{name: _shown(source) for name, source in sources.items()},
         **overrides_row(cfg, SHOWN)},
    )
    with StopRequest("finishing this chunk and writing it") as stop:
        try:
            done = {name: run_stage(name, sources[name], rows, folder, cfg.chunk_size, cfg.seed, stop)
                    for name in FIELDS}
        except KeyboardInterrupt as exc:  # a second signal stops at once
            raise stopped(folder) from exc
    target = write_training_file(folder, rows)
    given = {name: sum(row.row.get(name) is not None for row in rows) for name in FIELDS}
    unfit = unfit_rows(rows)
    warn_unfit(unfit, len(rows))
    stages = {
        name: {**record["stages"][name], "rows_from_input": given[name], "rows_from_source": len(rows) - given[name],
               "rows_written_before": done[name].before}
        for name in FIELDS
    }
    unfit_counts = {kind: {"count": len(found), "rows": found} for kind, found in unfit.items()}
    write_record(folder, {**record, "status": "finished", "finished": now(), "stages": stages, "unfit": unfit_counts})
    ui.info(f"{len(rows)} rows written to [bold]{target}[/]; learn from them with `ftcli train task=feedback "
            f"task.objective=imitate data.train_file={target}`")
    return target


def _shown(source: Source | None) -> str:
    """A stage's source in the summary: the run with its task and model, the file, or the input."""
    if isinstance(source, RunSource):
        about = source.describe()
        objective = f" {about['objective']}" if about["objective"] else ""
        return f"{source.role.setting}={source.path} ({about['task']}{objective}, {about['model']})"
    if isinstance(source, FeedbackFile):
        return f"feedback_file={source.path} (matched by {source.matched_by})"
    return "the input rows"
