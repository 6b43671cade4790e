"""The training loop, on `accelerate`: one readable function from first batch to best weights.

`accelerate` owns devices, mixed precision and gradient accumulation, so the same loop runs on
CPU, one GPU, or under `accelerate launch`. Losses stay on the device between log steps (no
per-step host sync). The best weights by `trainer.metric_for_best` are kept and restored at the
end (a tie goes to the lower validation loss, then to the earlier evaluation); early stopping ends
the run after `early_stopping_patience` evaluations without gain.
Ctrl-C or SIGTERM ends the run after the current step with a checkpoint (`ftcli.engine.signals`);
a non-finite loss or a step that does not fit in memory ends it with what to change.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from ftcli.config.schema import EvalStrategy, Precision, TrainerConfig
from ftcli.engine.attention import variable_length_attention
from ftcli.engine.batching import TokenBudgetBatches, TrainBatches
from ftcli.engine.optim import build_optimizer, build_scheduler
from ftcli.engine.signals import StopRequest
from ftcli.errors import ConfigError, Interrupted, TrainingError


class Callbacks(Protocol):
    def on_train_begin(self, total_steps: int) -> None: ...
    def on_step(self, step: int, record: dict[str, Any] | None) -> None: ...
    def on_evaluate(self, step: int, record: dict[str, Any]) -> None: ...
    def on_train_end(self) -> None: ...


@dataclass
class TrainResult:
    steps: int
    epochs: float
    samples: int
    train_seconds: float
    best_step: int | None
    best_metric: float | None
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds else 0.0


def mixed_precision(precision: Precision) -> str:
    """accelerate's mixed-precision mode for a `trainer.precision` setting.

    bf16 is only used where the hardware computes it: emulated on a CPU without AVX512-BF16 or
    AMX, a training step runs about 9x slower than in fp32 (MiniLM, batch 32 x 64 tokens, AVX2).
    """
    if precision is Precision.auto:
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if precision is Precision.bf16 and not native_bf16():
        _bf16_fallback_notice()
        return "no"
    return {Precision.fp32: "no", Precision.bf16: "bf16", Precision.fp16: "fp16"}[precision]


def native_bf16() -> bool:
    """Whether bf16 math runs in hardware here: a CUDA GPU that has it, or a CPU oneDNN runs it on."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@functools.cache
def _bf16_fallback_notice() -> None:
    from ftcli import ui

    ui.info(
        "[yellow]trainer.precision=bf16: this CPU has no bf16 instructions (AVX512-BF16 or AMX), where bf16 "
        "runs several times slower than fp32; training and evaluating in fp32[/]"
    )


def autocast_for(precision: Precision, device: torch.device) -> Callable[[], AbstractContextManager[Any]]:
    """The autocast context inference should use to match training numerics."""
    mode = mixed_precision(precision)
    if mode == "no":
        return lambda: torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


def train_loop(
    model: nn.Module,
    features: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    cfg: TrainerConfig,
    lr: float,
    seed: int,
    evaluate: Callable[[nn.Module], dict[str, Any]],
    callbacks: Callbacks,
    lr_scale: Callable[[str], float] | None = None,
    checkpoints: Checkpointing | None = None,
) -> TrainResult:
    """Train `model` in place and leave the best weights in it.

    `evaluate(model)` returns the validation metrics; the one named `cfg.metric_for_best` picks
    the best weights. With `checkpoints`, the loop saves a checkpoint every `cfg.save_every`
    steps and, given `checkpoints.resume`, starts from one: weights, optimiser, scheduler, best
    evaluation, position in the epoch and random state, so the rest of the run is the same as if
    it had not stopped.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    # accelerate keeps one global state per process; a sweep (`-m trainer.precision=fp32,bf16`)
    # runs several trainings in one process, each with its own settings. The distributed
    # process state (PartialState) is kept.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    accelerator = Accelerator(
        mixed_precision=mixed_precision(cfg.precision), gradient_accumulation_steps=cfg.grad_accum_steps
    )
    batches = _train_batches([len(f["input_ids"]) for f in features], cfg, seed)
    # its own generator: the loader then draws nothing from torch's global random state, which a
    # resumed run restores mid-epoch
    loader = DataLoader(features, batch_sampler=batches, collate_fn=collate, generator=torch.Generator().manual_seed(seed))
    steps_per_epoch = max(1, math.ceil(len(batches) / cfg.grad_accum_steps))
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    optimizer = build_optimizer(model, cfg, lr, lr_scale)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    # only the training forward pass is compiled: weights, checkpoints and evaluation see `model`
    forward = torch.compile(model, dynamic=True) if cfg.compile else model

    best = _Best(cfg)
    result = TrainResult(0, 0.0, 0, 0.0, None, None, False)
    running_loss, running_count = torch.zeros((), device=accelerator.device), 0
    epoch, skip = 0, 0
    resume = checkpoints.resume if checkpoints else None
    if resume is not None:
        from ftcli.engine.checkpoint import restore, restore_rng

        state = resume.state
        best.state = restore(resume, accelerator.unwrap_model(model), optimizer, scheduler)
        best.value, best.step, best.bad_evals = state.best_value, state.best_step, state.bad_evals
        best.loss = state.best_loss
        result.steps, result.samples, result.train_seconds = state.step, state.samples, state.train_seconds
        result.history = list(state.history)
        running_loss += state.running_loss
        running_count, epoch, skip = state.running_count, state.epoch, state.batches_in_epoch
    callbacks.on_train_begin(total_steps)
    model.train()
    started = time.perf_counter()
    with StopRequest() as stop, ExitStack() as cleanup:
        cleanup.callback(callbacks.on_train_end)  # the progress display stops however the loop ends
        cleanup.enter_context(variable_length_attention())
        while result.steps < total_steps and not result.stopped_early:
            batches.skip = skip
            loader.set_epoch(epoch)  # accelerate's loader passes its own epoch count on to the sampler
            consumed = skip
            for batch in loader:
                if resume is not None:  # once the loader has started: it may draw from the random state
                    restore_rng(resume)
                    resume = None
                consumed += 1
                with accelerator.accumulate(model), _out_of_memory_hint(cfg, batch, result.steps + 1):
                    loss = forward(**batch).loss
                    accelerator.backward(loss)
                    running_loss += loss.detach()
                    running_count += 1
                    result.samples += _examples(batch)
                    if accelerator.sync_gradients and cfg.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                if not accelerator.sync_gradients:
                    continue
                scheduler.step()
                result.steps += 1
                record = None
                if result.steps % cfg.logging_steps == 0 or result.steps == total_steps:
                    record = _log_record(result, running_loss, running_count, scheduler, started, steps_per_epoch)
                    _check_finite(record["loss"], result.steps, record["lr"], checkpoints)
                    result.history.append(record)
                    running_loss.zero_()
                    running_count = 0
                callbacks.on_step(result.steps, record)
                end_of_epoch = result.steps % steps_per_epoch == 0
                if _should_evaluate(cfg, result.steps, end_of_epoch, total_steps):
                    result.train_seconds += time.perf_counter() - started
                    metrics = evaluate(accelerator.unwrap_model(model))
                    started = time.perf_counter()
                    record = {"step": result.steps, "epoch": round(result.steps / steps_per_epoch, 4), "eval": metrics}
                    result.history.append(record)
                    callbacks.on_evaluate(result.steps, record)
                    if best.update(metrics, result.steps, accelerator.unwrap_model(model)):
                        result.stopped_early = True
                interrupted = stop.signal is not None and checkpoints is not None
                if checkpoints and (checkpoints.due(result.steps, total_steps) or interrupted) and not result.stopped_early:
                    result.train_seconds += time.perf_counter() - started
                    loss_so_far = running_loss.item()
                    _check_finite(loss_so_far / max(running_count, 1), result.steps, scheduler.get_last_lr()[0], checkpoints)
                    checkpoints.save(
                        accelerator, accelerator.unwrap_model(model), optimizer, scheduler, result, best,
                        epoch, consumed, loss_so_far, running_count,
                    )
                    started = time.perf_counter()
                    if interrupted:
                        raise Interrupted(
                            f"{stop.signal.name} at step {result.steps} of {total_steps}: "
                            f"checkpoint saved in {checkpoints.last}",
                            hint="run the same command again with trainer.resume=auto",
                        )
                if result.steps >= total_steps or result.stopped_early:
                    break
            epoch, skip = epoch + 1, 0
            batches.skip = 0
    result.train_seconds += time.perf_counter() - started
    result.epochs = result.steps / steps_per_epoch
    best.restore(accelerator.unwrap_model(model))
    result.best_step, result.best_metric = best.step, best.value
    return result


def _loss_of(metrics: dict[str, Any]) -> float | None:
    """The validation loss of an evaluation, when it has one (splits without labels have none)."""
    loss = metrics.get("loss")
    return float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else None


def _train_batches(lengths: list[int], cfg: TrainerConfig, seed: int) -> TrainBatches | TokenBudgetBatches:
    if cfg.max_tokens_per_batch is None:
        return TrainBatches(lengths, cfg.batch_size, seed, cfg.group_by_length)
    try:
        return TokenBudgetBatches(lengths, cfg.max_tokens_per_batch, seed)
    except ValueError as exc:
        raise ConfigError(
            f"trainer.max_tokens_per_batch={cfg.max_tokens_per_batch}: {exc}",
            hint=f"raise it to at least {max(lengths)}, or lower task.max_length",
        ) from exc


def _examples(batch: dict[str, torch.Tensor]) -> int:
    """Examples in a batch; a padding-free batch is one row of several, each starting at position 0."""
    if "position_ids" in batch and "attention_mask" not in batch:
        return int((batch["position_ids"] == 0).sum())
    return len(batch["input_ids"])


def _should_evaluate(cfg: TrainerConfig, step: int, end_of_epoch: bool, total_steps: int) -> bool:
    if cfg.eval_strategy is EvalStrategy.no:
        return False
    if step == total_steps:
        return True
    if cfg.eval_strategy is EvalStrategy.epoch:
        return end_of_epoch
    return step % cfg.eval_steps == 0


def _log_record(result: TrainResult, loss_sum: torch.Tensor, count: int, scheduler: Any, started: float, spe: int) -> dict[str, Any]:
    elapsed = result.train_seconds + (time.perf_counter() - started)
    return {
        "step": result.steps,
        "epoch": round(result.steps / spe, 4),
        "loss": loss_sum.item() / max(count, 1),
        "lr": scheduler.get_last_lr()[0],
        "samples_per_second": round(result.samples / elapsed, 2) if elapsed else 0.0,
    }


def _check_finite(loss: float, step: int, lr: float, checkpoints: Checkpointing | None) -> None:
    """Stop on a non-finite loss before it reaches a checkpoint, naming the last good one."""
    if math.isfinite(loss):
        return
    kept = f"; the last good checkpoint, {checkpoints.last}, is kept" if checkpoints and checkpoints.last else ""
    raise TrainingError(
        f"the training loss became {loss} by step {step} (lr {lr:.3g}){kept}",
        hint="lower trainer.lr, or train in full precision with trainer.precision=fp32, and start again with overwrite=true",
    )


@contextmanager
def _out_of_memory_hint(cfg: TrainerConfig, batch: dict[str, torch.Tensor], step: int) -> Iterator[None]:
    """A step that does not fit in memory becomes an error that says how to make it fit."""
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not isinstance(exc, torch.OutOfMemoryError) and not _is_out_of_memory(exc):
            raise
        shape = "x".join(str(n) for n in batch["input_ids"].shape)
        if cfg.max_tokens_per_batch is not None:
            setting = f"trainer.max_tokens_per_batch={cfg.max_tokens_per_batch}"
            fix = (f"trainer.max_tokens_per_batch={max(1, cfg.max_tokens_per_batch // 2)} "
                   f"trainer.grad_accum_steps={cfg.grad_accum_steps * 2} trains on about the same tokens per step")
        else:
            smaller = max(1, cfg.batch_size // 2)
            setting = f"trainer.batch_size={cfg.batch_size}"
            fix = (f"trainer.batch_size={smaller} trainer.grad_accum_steps={cfg.grad_accum_steps * cfg.batch_size // smaller} "
                   "trains with the same effective batch")
        raise TrainingError(
            f"out of memory at step {step} with {setting} (a batch of {shape} tokens)",
            hint=f"{fix} in less memory; a smaller task.max_length or trainer.precision=bf16 also help",
        ) from exc


def _is_out_of_memory(exc: RuntimeError) -> bool:
    """CPU allocators raise a plain RuntimeError; CUDA ones torch.OutOfMemoryError."""
    text = str(exc)
    return "can't allocate memory" in text or "out of memory" in text.lower()


@dataclass
class Checkpointing:
    """Where and how often the loop saves checkpoints, and the one to resume from."""

    run_path: Any  # pathlib.Path of the run directory
    every: int | None  # steps between checkpoints; None: none
    keep: int  # newest checkpoints kept
    config: dict[str, Any]  # the run's config, recorded so a resume can check it is the same run
    resume: Any = None  # a checkpoint.Checkpoint
    last: Any = None  # pathlib.Path of the newest complete checkpoint

    def __post_init__(self) -> None:
        if self.resume is not None:
            self.last = self.resume.path

    def due(self, step: int, total_steps: int) -> bool:
        return bool(self.every) and step % self.every == 0 and step < total_steps

    def save(self, accelerator: Any, model: nn.Module, optimizer: Any, scheduler: Any, result: TrainResult,
             best: _Best, epoch: int, consumed: int, running_loss: float, running_count: int) -> None:
        """Write a checkpoint from the main process; the others wait until it is complete."""
        from ftcli.engine.checkpoint import LoopState, checkpoints_dir, save_checkpoint

        state = LoopState(
            step=result.steps, epoch=epoch, batches_in_epoch=consumed, samples=result.samples,
            train_seconds=result.train_seconds, running_loss=running_loss, running_count=running_count,
            best_value=best.value, best_loss=best.loss, best_step=best.step, bad_evals=best.bad_evals,
            history=result.history,
            config=self.config,
        )
        if accelerator.is_main_process:
            save_checkpoint(self.run_path, model, optimizer, scheduler, state, best.state, self.keep)
        accelerator.wait_for_everyone()
        self.last = checkpoints_dir(self.run_path) / f"step-{result.steps}"


class _Best:
    """Tracks the best evaluation and a CPU copy of the trainable weights at that point.

    Evaluations are ranked by `trainer.metric_for_best`; on a tie the lower validation `loss`
    wins, then the earlier evaluation. A metric such as accuracy on a small validation split ties
    often, and the loss still tells the better fitted of the tied weights apart.
    """

    def __init__(self, cfg: TrainerConfig) -> None:
        self.cfg = cfg
        self.value: float | None = None
        self.loss: float | None = None  # the validation loss of the best evaluation, for ties
        self.step: int | None = None
        self.state: dict[str, torch.Tensor] | None = None
        self.bad_evals = 0

    def update(self, metrics: dict[str, Any], step: int, model: nn.Module) -> bool:
        """Record an evaluation; returns True when early stopping says stop."""
        name = self.cfg.metric_for_best
        if name not in metrics or not isinstance(metrics[name], (int, float)):
            numeric = [k for k, v in metrics.items() if isinstance(v, (int, float))]
            raise ConfigError(
                f"trainer.metric_for_best={name!r} is not among the validation metrics",
                hint=f"choose one of: {', '.join(numeric)}",
            )
        value, loss = float(metrics[name]), _loss_of(metrics)
        if self._beats(value, loss):
            self.value, self.loss, self.step, self.bad_evals = value, loss, step, 0
            self.state = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
        else:
            self.bad_evals += 1
        patience = self.cfg.early_stopping_patience
        return patience is not None and self.bad_evals >= patience

    def _beats(self, value: float, loss: float | None) -> bool:
        """Whether an evaluation scoring `value` (validation loss `loss`) is better than the best so far."""
        if self.value is None:
            return True
        if value != self.value:
            return value > self.value if self.cfg.maximize else value < self.value
        return loss is not None and self.loss is not None and loss < self.loss

    def restore(self, model: nn.Module) -> None:
        if self.state is None:
            return
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, saved in self.state.items():
                params[name].copy_(saved)
