"""Rebuilding a trained model from a run directory alone: config, labels, tokenizer, weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcli.config.schema import TrainConfig
from ftcli.methods import METHODS, Method
from ftcli.modeling import build_model, prepare_tokenizer, sync_pad_token
from ftcli.run_dir import LABELS, RunDir, read_config
from ftcli.tasks import TASKS, Task


@dataclass
class TrainedRun:
    cfg: TrainConfig
    labels: list[str]
    task: Task
    method: Method
    model: Any
    tokenizer: Any


def load_trained(path: str | Path) -> TrainedRun:
    """Everything `eval`, `predict` and `export` need, read back from `path`."""
    import torch
    import transformers
    from accelerate import PartialState
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    run = RunDir(path)
    run.ensure_readable()
    cfg = read_config(run)
    labels = run.read_json(LABELS)["labels"]
    task = TASKS.get(cfg.task.name).impl
    method = METHODS.get(cfg.method.name).impl
    artifact = run.path / method.artifact
    if method.artifact == "model":
        model = task.model_class().from_pretrained(artifact, dtype=torch.float32)
    else:
        model = method.load(build_model(cfg.model, task.model_class(), labels, **task.model_config(cfg.task)), artifact)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(artifact))
    sync_pad_token(model, tokenizer)
    model.to(PartialState().device).eval()
    return TrainedRun(cfg, labels, task, method, model, tokenizer)
