"""`ftcli eval task=<scorer>`: score a pretrained model as it is, no training, no run directory.

Everything specific to the scorer (its model class, labels, how a split is scored, what is
recorded of its settings) comes from `ftcli.tasks.scorers.Scorer`; this module reads the data,
builds the model and writes `metrics.json` and `predictions.jsonl` into the job's folder.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ftcli import ui
from ftcli.commands.summary import data_source, overrides_row
from ftcli.config.schema import ScoreConfig
from ftcli.data.jsonl import jsonl_line
from ftcli.data.splits import load_splits, with_absolute_paths
from ftcli.files import write_text_atomic
from ftcli.models.loading import build_model, build_tokenizer, fit_max_length, load_config, sync_pad_token
from ftcli.runs.directory import METRICS, RunDir
from ftcli.tasks.scorers import scorer_of


def run(cfg: ScoreConfig, output_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    cfg = replace(cfg, data=with_absolute_paths(cfg.data))
    entry = scorer_of(cfg.task)
    task, scorer, name = cfg.task, entry.impl, entry.name
    mode = scorer.mode(task)
    ui.print_summary(
        f"ftcli eval task={name} → {output_dir}",
        {
            "model": cfg.model.name_or_path,
            "task": f"{name} ({mode})",
            "data": data_source(cfg.data, scorer.sample(task)),
            **overrides_row(cfg),
        },
    )
    splits = load_splits(cfg.data, scorer.sample(task), cfg.seed, training=scorer.needs_training_rows(task, cfg.data))
    train = splits.rows.get("train")
    labels = scorer.label_names(train, task, cfg.data)
    tokenizer = build_tokenizer(cfg.model)
    model = build_model(cfg.model, scorer.model_class(load_config(cfg.model)), [])
    sync_pad_token(model, tokenizer)
    task = replace(task, max_length=fit_max_length(model, task.max_length, type(task).max_length))
    ui.info(f"{mode} {name} of {cfg.model.name_or_path}; labels: {', '.join(labels)}")

    metrics: dict[str, Any] = {}
    lines = []
    for split in ("validation", "test"):
        if split not in splits:
            continue
        scored = scorer.score_rows(
            model, tokenizer, splits[split], splits.sources[split], task, cfg.data, labels, train, cfg.seed,
            cfg.batch_size,
        )
        if scored.metrics is not None:
            metrics[split] = scored.metrics
        for row, row_scores in zip(splits[split], scored.scores):
            best = int(row_scores.argmax())
            by_label = {label: round(float(v), 4) for label, v in zip(labels, row_scores)}
            lines.append(jsonl_line({"split": split, **row, "prediction": labels[best], "scores": by_label}))
    metrics[name] = {"model": cfg.model.name_or_path, **scorer.settings(task),
                     "wall_seconds": round(time.perf_counter() - started, 2)}
    run_dir = RunDir(output_dir)
    write_text_atomic(output_dir / "predictions.jsonl", "".join(line + "\n" for line in lines))
    run_dir.write_json(METRICS, metrics)
    ui.print_metrics({k: v for k, v in metrics.items() if k != name}, title=f"{mode} {name}")
    ui.info(f"metrics and predictions written to [bold]{output_dir}[/]")
    return metrics
