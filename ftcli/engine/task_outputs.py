"""What a task is scored on: logits from one forward pass, or the texts a generation task writes."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ftcli.engine.attention import variable_length_attention
from ftcli.engine.inference import Outputs, run_inference
from ftcli.tasks.notes import NOTE

LABEL_FIELDS = ("labels", "decoder_input_ids", "reference")


def task_outputs(
    task: Any,
    task_cfg: Any,
    model: Any,
    tokenizer: Any,
    features: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], Any],
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    streamer: Any = None,
) -> Outputs:
    """`Outputs` whose `logits` are what `task.metrics` and `task.predictions` read.

    Tasks with `generates = True` get the decoded generated texts in their place (settings from
    `task_cfg.generation`), and a teacher-forced loss per target token when the features have
    labels. A task whose config sets `generate_in_eval: false` is not generated for on labelled
    features (evaluation), only in `predict`; its `logits` are then None. Every other task gets
    logits from `run_inference`.
    """
    with variable_length_attention():  # see engine/attention.py
        if not getattr(task, "generates", False):
            return run_inference(model, features, collate, batch_size, autocast)
        from ftcli.engine.generation import generate_ids, teacher_forced_loss

        labelled = bool(features) and "labels" in features[0]
        loss = teacher_forced_loss(model, features, collate, batch_size, autocast) if labelled else None
        if labelled and not getattr(task_cfg, "generate_in_eval", True):
            return Outputs(None, loss)
        if hasattr(task, "prompts"):
            prompts, prompt_collate = task.prompts(features), task.prompt_collator(tokenizer)
        else:  # encoder-decoders generate from the features' own encoder inputs
            prompts = [{k: v for k, v in f.items() if k not in (*LABEL_FIELDS, NOTE)} for f in features]
            prompt_collate = collate
        generation = {**task_cfg.generation.as_kwargs(), **_special_tokens(model, tokenizer, task, task_cfg)}
        sequences = generate_ids(model, prompts, prompt_collate, batch_size, generation, autocast, streamer)
        texts = tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return Outputs([text.strip() for text in texts], loss)


def scores(task: Any, task_cfg: Any, outputs: Outputs, features: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    """The metrics of one split: the loss, perplexity for language-model tasks, and the task's own."""
    result: dict[str, Any] = {"loss": outputs.loss}
    if getattr(task, "generates", False) and outputs.loss is not None:
        result["perplexity"] = math.exp(min(outputs.loss, 700.0))  # exp overflows a float past ~709
    return {**result, **task.metrics(outputs.logits, features, task_cfg, labels)}


def _special_tokens(model: Any, tokenizer: Any, task: Any, task_cfg: Any) -> dict[str, Any]:
    """Where a decoder's generation stops and what it pads with: the model's own stop tokens plus
    the task's (the end of an answer in its template; the tokenizer's EOS, else SEP, otherwise)."""
    if getattr(model.config, "is_encoder_decoder", False):
        return {}
    if hasattr(task, "stop_ids"):
        ends = task.stop_ids(tokenizer, task_cfg)
    else:
        end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        ends = [end] if end is not None else []
    own = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stops = sorted({*(own if isinstance(own, list) else [own] if own is not None else []), *ends})
    return {"eos_token_id": stops or None, "pad_token_id": tokenizer.pad_token_id}
