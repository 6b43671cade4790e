"""`ftcli eval`: re-score a finished run on its own validation/test data or on files you name.

With several runs (`run_dir=[a,b,c]`) it scores their ensemble (`ftcli.runs.ensemble`), and
metrics.json says which runs took part and how they were combined (`"ensemble"`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ftcli import ui
from ftcli.commands.summary import SHOWN, data_source, overrides_row, run_rows
from ftcli.config.schema import DataConfig, EvalConfig, EvalDataConfig
from ftcli.data.splits import load_splits
from ftcli.engine import processes
from ftcli.runs.cached_features import FeatureCache
from ftcli.runs.directory import METRICS, RunDir
from ftcli.runs.ensemble import load_ensemble
from ftcli.tasks.notes import report, token_room

SOURCE_KEYS = ("dataset", "validation_file", "test_file")


def run(cfg: EvalConfig, output_dir: Path) -> dict[str, Any]:
    from accelerate.utils import set_seed

    ensemble = load_ensemble(cfg.runs, cfg.ensemble)
    train_cfg = ensemble.first.cfg
    set_seed(train_cfg.seed)  # sampled generation scores the same on every eval
    data, own_data = eval_data(train_cfg.data, cfg.data)
    ui.print_summary(
        f"ftcli eval of {ensemble.name} → {output_dir}",
        {**run_rows(train_cfg), "data": data_source(data, train_cfg.task.name, own_data),
         **overrides_row(cfg, (*SHOWN, "run_dir"))},
    )
    splits = load_splits(data, train_cfg.task.name, train_cfg.seed, training=False, use_sample=own_data)
    ensemble = ensemble.each(lambda trained: trained.rebound(data=data))
    first = ensemble.first
    room = token_room(first.model, first.method.virtual_tokens(train_cfg.method))
    cache = FeatureCache(first.task, train_cfg.task.name, first.cfg.task, first.cfg.data, first.labels, first.tokenizer)
    encoded = cache.encode_splits(splits.rows, splits.sources)
    metrics = {}
    for split, rows in splits.rows.items():
        features = encoded[split]
        report(features, len(rows), split, splits.sources[split], train_cfg.task.max_length, room, "eval",
               length_fixed=True)
        outputs = ensemble.outputs(rows, features, splits.sources[split], cfg.batch_size)
        metrics[split] = first.task.scores(outputs, features)
    if processes.is_main():  # a distributed eval scores its shares on every rank; the main one writes
        RunDir(output_dir).write_json(METRICS, {**metrics, **ensemble.record()})
    ui.print_metrics(metrics, title=f"eval of {ensemble.name}")
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
