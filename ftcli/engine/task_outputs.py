"""What a task is scored on: logits from one forward pass, or the texts a generation task writes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ftcli.engine.inference import Outputs, run_inference


def task_outputs(
    task: Any,
    task_cfg: Any,
    model: Any,
    tokenizer: Any,
    features: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], Any],
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Outputs:
    """`Outputs` whose `logits` are what `task.metrics` and `task.predictions` read.

    Tasks with `generates = True` get the decoded generated texts in their place (generation
    settings from `task_cfg.generation`); every other task gets logits from `run_inference`.
    """
    if not getattr(task, "generates", False):
        return run_inference(model, features, collate, batch_size, autocast)
    from ftcli.engine.generation import run_generation

    generated = run_generation(model, features, collate, batch_size, task_cfg.generation.as_kwargs(), autocast)
    texts = tokenizer.batch_decode(generated.sequences, skip_special_tokens=True)
    return Outputs([text.strip() for text in texts], generated.loss)
