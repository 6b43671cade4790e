"""`ftcli eval`: re-score a finished run on its own validation/test data or on files you name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ftcli import ui
from ftcli.commands.summary import SHOWN, data_source, overrides_row, run_rows
from ftcli.config.schema import DataConfig, EvalConfig, EvalDataConfig
from ftcli.data.splits import load_splits
from ftcli.runs.directory import METRICS, RunDir
from ftcli.runs.trained import load_trained
from ftcli.tasks.notes import report, token_room
from ftcli.tasks.pipeline import split_scores

SOURCE_KEYS = ("dataset", "validation_file", "test_file")


def run(cfg: EvalConfig, output_dir: Path) -> dict[str, Any]:
    from accelerate.utils import set_seed

    trained = load_trained(cfg.run_dir)
    train_cfg = trained.cfg
    set_seed(train_cfg.seed)  # sampled generation scores the same on every eval
    data, own_data = eval_data(train_cfg.data, cfg.data)
    ui.print_summary(
        f"ftcli eval of {cfg.run_dir} → {output_dir}",
        {**run_rows(train_cfg), "data": data_source(data, train_cfg.task.name, own_data),
         **overrides_row(cfg, (*SHOWN, "run_dir"))},
    )
    splits = load_splits(data, train_cfg.task.name, train_cfg.seed, training=False, use_sample=own_data)
    batch_size = cfg.batch_size or train_cfg.trainer.eval_batch_size
    task = trained.rebound(data=data).task
    room = token_room(trained.model, trained.method.virtual_tokens(train_cfg.method))
    metrics = {}
    for split, rows in splits.rows.items():
        features = task.encode(rows, splits.sources[split])
        report(features, len(rows), split, splits.sources[split], train_cfg.task.max_length, room, "eval",
               length_fixed=True)
        metrics[split] = split_scores(task, trained.model, features, batch_size, train_cfg.trainer.precision)
    RunDir(output_dir).write_json(METRICS, metrics)
    ui.print_metrics(metrics, title=f"eval of {cfg.run_dir}")
    ui.info(f"metrics written to [bold]{output_dir / METRICS}[/]")
    return metrics


def eval_data(trained: DataConfig, given: EvalDataConfig) -> tuple[DataConfig, bool]:
    """The data config to evaluate on, and whether it is the run's own data.

    Naming a new source (a dataset or a validation/test file) evaluates exactly what was named;
    column and size overrides apply either way.
    """
    overrides = {k: v for k, v in vars(given).items() if v is not None}
    if not any(k in overrides for k in SOURCE_KEYS):
        return replace(trained, **overrides), True
    sources = {"dataset": None, "dataset_config": None, "train_file": None, "validation_file": None, "test_file": None}
    return replace(trained, **{**sources, **overrides}), False
