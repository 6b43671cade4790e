"""`ftcli eval task=prompting`: zero/few-shot classification of a pretrained language model, no training."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ftcli import ui
from ftcli.config.schema import PromptingEvalConfig
from ftcli.data import load_splits, with_absolute_paths
from ftcli.jsonl import jsonl_line
from ftcli.modeling import build_model, build_tokenizer, fit_max_length, load_config, sync_pad_token
from ftcli.run_dir import METRICS, RunDir, write_text_atomic
from ftcli.summary import data_source, overrides_row
from ftcli.tasks import TASKS


def run(cfg: PromptingEvalConfig, output_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    cfg = replace(cfg, data=with_absolute_paths(cfg.data))
    task, prompting = cfg.task, TASKS.get("prompting").impl
    ui.print_summary(
        f"ftcli eval task=prompting → {output_dir}",
        {
            "model": cfg.model.name_or_path,
            "task": f"prompting ({task.shots}-shot)" if task.shots else "prompting (zero-shot)",
            "data": data_source(cfg.data, task.sample),
            **overrides_row(cfg),
        },
    )
    needs_train = task.shots > 0 or not (task.label_words or cfg.data.label_names)
    splits = load_splits(cfg.data, task.sample, cfg.seed, training=needs_train)
    train = splits.rows.get("train")
    labels = prompting.label_names(train, task, cfg.data)
    tokenizer = build_tokenizer(cfg.model)
    model = build_model(cfg.model, prompting.model_class(load_config(cfg.model)), [])
    sync_pad_token(model, tokenizer)
    task = replace(task, max_length=fit_max_length(model, task.max_length, type(task)().max_length))
    shots = f"{task.shots}-shot" if task.shots else "zero-shot"
    ui.info(f"{shots} prompting of {cfg.model.name_or_path}; labels: {', '.join(labels)}")

    metrics: dict[str, Any] = {}
    lines = []
    for split in ("validation", "test"):
        if split not in splits:
            continue
        prompts = prompting.prompts(splits[split], splits.sources[split], task, cfg.data, labels, train, cfg.seed)
        scores = prompting.score(model, tokenizer, prompts, task, cfg.batch_size)
        if prompts.references is not None:
            metrics[split] = prompting.metrics(scores, prompts, labels)
        for row, row_scores in zip(splits[split], scores):
            best = int(row_scores.argmax())
            scored = {name: round(float(v), 4) for name, v in zip(labels, row_scores)}
            lines.append(jsonl_line({"split": split, **row, "prediction": labels[best], "scores": scored}))
    metrics["prompting"] = {"model": cfg.model.name_or_path, "shots": task.shots, "template": task.template,
                            "wall_seconds": round(time.perf_counter() - started, 2)}
    run_dir = RunDir(output_dir)
    write_text_atomic(output_dir / "predictions.jsonl", "".join(line + "\n" for line in lines))
    run_dir.write_json(METRICS, metrics)
    ui.print_metrics({k: v for k, v in metrics.items() if k != "prompting"}, title=f"{shots} prompting")
    ui.info(f"metrics and predictions written to [bold]{output_dir}[/]")
    return metrics
