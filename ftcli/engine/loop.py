"""The training loop, on `accelerate`: one readable function from first batch to best weights.

`accelerate` owns devices, mixed precision and the processes of a distributed run, so the same
loop runs on CPU, one GPU, or under `accelerate launch`. The loss comes from a `TrainingStep`
(`ftcli.engine.step`), and each optimiser step is the mean over the units (rows, supervised
tokens) of all its micro-batches, so `trainer.grad_accum_steps` changes memory, not the gradient.
Losses stay on the device between log steps (no per-step host sync). The best weights by
`trainer.metric_for_best` are kept and restored at the end (a tie goes to the lower validation
loss, then to the earlier evaluation); early stopping ends the run after
`early_stopping_patience` evaluations without gain. With `trainer.ema` the moving average of the
weights (`ftcli.engine.add_ons.ema`) stands in for them in every evaluation and at the end.
Ctrl-C or SIGTERM ends the run after the current step with a checkpoint (`ftcli.engine.signals`);
a non-finite loss or a step that does not fit in memory ends it with what to change.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.utils.data import DataLoader

from ftcli.config.schema import EvalStrategy, TrainerConfig
from ftcli.engine.add_ons import ema
from ftcli.engine.attention import variable_length_attention
from ftcli.engine.batching import TokenBudgetBatches, TrainBatches
from ftcli.engine.checkpoint import Checkpointing, restore, restore_rng
from ftcli.engine.memory_levers import memory_levers
from ftcli.engine.optim import build_optimizer, build_scheduler
from ftcli.engine.precision import mixed_precision
from ftcli.engine.signals import StopRequest
from ftcli.engine.state import LoopState
from ftcli.engine.step import Batch, Collate, ModelLoss, TrainingStep, rows
from ftcli.engine.strategies import accelerator_plugins
from ftcli.engine.streams import FeatureStream, StreamBatches
from ftcli.engine.throughput import TokenCount, tokens_per_second
from ftcli.errors import ConfigError, TrainingError


class Callbacks(Protocol):
    def on_train_begin(self, total_steps: int) -> None: ...
    def on_step(self, step: int, record: dict[str, Any] | None) -> None: ...
    def on_evaluate(self, step: int, record: dict[str, Any]) -> None: ...
    def on_train_end(self) -> None: ...


@dataclass
class Training:
    """What the loop trains, on what, at which rate, and how it judges and reports progress.

    `evaluate(model)` returns the validation metrics; the one named `trainer.metric_for_best`
    picks the best weights. With `checkpoints`, the loop saves a checkpoint every
    `trainer.save_every` steps and, given `checkpoints.resume`, starts from one.
    """

    model: nn.Module
    features: list[dict[str, Any]] | FeatureStream  # a stream with data.streaming=true (`ftcli.engine.streams`)
    collate: Collate
    lr: float
    seed: int
    evaluate: Callable[[nn.Module], dict[str, Any]]
    callbacks: Callbacks
    step: TrainingStep = field(default_factory=ModelLoss)
    lr_scale: Callable[[str], float] | None = None  # a learning-rate factor by parameter name
    checkpoints: Checkpointing | None = None


@dataclass
class _Prepared:
    """The training objects once `accelerate` has placed them, and the length of the run."""

    accelerator: Any
    model: nn.Module  # as accelerate wraps it (DDP under `accelerate launch`)
    forward: nn.Module  # `model`, or its compiled forward pass with trainer.compile
    optimizer: Any
    scheduler: Any
    loader: Any
    batches: TrainBatches | TokenBudgetBatches | StreamBatches
    steps_per_epoch: int
    total_steps: int
    tokens: TokenCount  # the batches' real tokens and slots since the last log step

    @property
    def unwrapped(self) -> nn.Module:
        """The model itself, whose weight names checkpoints, evaluation and the best weights use."""
        return self.accelerator.unwrap_model(self.model)


def train_loop(training: Training, cfg: TrainerConfig) -> LoopState:
    """Train `training.model` in place, leave the best weights in it, and return where the run ended.

    A run resumed from a checkpoint restores the loop state whole, with weights, optimiser,
    scheduler, position in the epoch and random state, so the rest of the run is the same as if
    it had not stopped.
    """
    run = _prepare(training, cfg)
    checkpoints, callbacks = training.checkpoints, training.callbacks
    resume = checkpoints.resume if checkpoints else None
    state = restore(resume, run.unwrapped, run.optimizer, run.scheduler) if resume else LoopState()
    state.running_loss = torch.tensor(float(state.running_loss), device=run.accelerator.device)
    if cfg.ema is not None:
        saved = state.ema_weights
        state.ema_weights = ema.placed(saved, run.unwrapped) if saved is not None else ema.start(run.unwrapped)
        ema.check_span(cfg.ema, run.total_steps)
    callbacks.on_train_begin(run.total_steps)
    run.model.train()
    clock = _Clock(state)
    with StopRequest() as stop, ExitStack() as cleanup:
        cleanup.callback(callbacks.on_train_end)  # the progress display stops however the loop ends
        cleanup.enter_context(variable_length_attention())
        while not _finished(state, run):
            if state.batches_in_epoch >= len(run.loader):  # resumed from a checkpoint at an epoch's end
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
                continue
            # the sampler deals the batches of all processes, one each in turn
            run.batches.skip = state.batches_in_epoch * run.accelerator.num_processes
            run.loader.set_epoch(state.epoch)
            run.batches.set_epoch(state.epoch)  # accelerate passes it on to a sampler it does not wrap, only
            for window in _windows(run.loader, cfg.grad_accum_steps):
                if resume is not None:  # once the loader has started: it may draw from the random state
                    restore_rng(resume)
                    resume = None
                state.batches_in_epoch += len(window)
                if isinstance(run.batches, StreamBatches):  # where a resumed run picks the stream up
                    state.stream_rows = run.batches.rows_consumed(state.batches_in_epoch)
                loss, stopping = _optimiser_step(run, training.step, window, cfg, state, stop.signal is not None)
                state.running_loss += loss
                state.running_count += 1
                state.step += 1
                state.epochs = state.step / run.steps_per_epoch
                record = _log(run, training.step, cfg, state, clock, checkpoints)
                callbacks.on_step(state.step, record)
                if _should_evaluate(cfg, state.step, state.step % run.steps_per_epoch == 0, run.total_steps):
                    _evaluate(run, training, cfg, state, clock)
                # several processes stop together, after the step whose exchange first carried a signal
                several = run.accelerator.num_processes > 1
                interrupted = checkpoints is not None and (stopping if several else stop.signal is not None)
                if checkpoints and (checkpoints.due(state.step, run.total_steps) or interrupted) and not state.stopped_early:
                    with clock.paused():
                        _count_tokens(run, state)
                        _check_finite(_running_mean(state), state.step, run.scheduler.get_last_lr()[0], checkpoints)
                        checkpoints.save(run.accelerator, run.unwrapped, run.optimizer, run.scheduler, state)
                    if interrupted:
                        name = stop.signal.name if stop.signal is not None else "a signal to another process"
                        raise checkpoints.interrupted(name, state.step, run.total_steps)
                if _finished(state, run):
                    break
            else:
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    clock.lap()
    _count_tokens(run, state)  # the steps since the last log step (a run stopped early ends between them)
    if state.best_weights is None and state.ema_weights is not None:  # no evaluation chose: the average
        ema.load(state.ema_weights, run.unwrapped)
    state.restore_best(run.unwrapped)
    return state


def _prepare(training: Training, cfg: TrainerConfig) -> _Prepared:
    """Batches, optimiser and scheduler for `training`, placed by a fresh `Accelerator`."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    # accelerate keeps one global state per process; a sweep (`-m trainer.precision=fp32,bf16`)
    # runs several trainings in one process, each with its own settings. The distributed
    # process state (PartialState) is kept.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    # accumulation is the loop's own (`_optimiser_step`): accelerate would divide each loss by k
    accelerator = Accelerator(mixed_precision=mixed_precision(cfg.precision),
                              **accelerator_plugins(cfg.distributed, cfg.max_grad_norm))
    training.step.prepare(accelerator, training.model)
    if isinstance(training.features, FeatureStream):
        return _prepare_stream(training, training.features, cfg, accelerator)
    features = training.features
    batches = _train_batches([len(f["input_ids"]) for f in features], cfg, training.seed, accelerator.num_processes)
    # its own generator: the loader then draws nothing from torch's global random state, which a
    # resumed run restores mid-epoch
    loader: DataLoader[dict[str, Any]] = DataLoader(
        features,  # type: ignore[arg-type]  # a list is a map-style dataset; torch's stubs ask for a Dataset
        batch_sampler=batches, collate_fn=training.step.collator(training.collate),
                        generator=torch.Generator().manual_seed(training.seed))
    optimizer = build_optimizer(training.model, cfg, training.lr, training.lr_scale)
    model, optimizer, loader = accelerator.prepare(training.model, optimizer, loader)
    steps_per_epoch = max(1, math.ceil(len(loader) / cfg.grad_accum_steps))  # this process's share of the batches
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    # only the training forward pass is compiled: weights, checkpoints and evaluation see `model`
    # compiling a module gives a module (OptimizedModule), though torch annotates a callable
    forward = cast(nn.Module, torch.compile(model, dynamic=True)) if cfg.compile else model
    return _Prepared(accelerator, model, forward, optimizer, scheduler, loader, batches, steps_per_epoch, total_steps,
                     TokenCount(accelerator.device))


def _prepare_stream(training: Training, stream: FeatureStream, cfg: TrainerConfig, accelerator: Any) -> _Prepared:
    """`_prepare` for a stream of rows: batches made as they are read, `trainer.max_steps` long.

    The batches are not handed to `accelerate`, whose loaders would split each batch across
    processes; each process keeps every `num_processes`-th batch of the stream instead
    (`StreamBatches`). An "epoch" is the whole run, so `epoch` in the log is the share of it done.
    """
    assert cfg.max_steps is not None  # TrainConfig.validate refuses a stream without it
    collate = training.step.collator(training.collate)
    batches = StreamBatches(stream, cfg.batch_size, collate, accelerator.device,
                            accelerator.num_processes, accelerator.process_index)
    optimizer = build_optimizer(training.model, cfg, training.lr, training.lr_scale)
    scheduler = build_scheduler(optimizer, cfg, cfg.max_steps)
    model, optimizer = accelerator.prepare(training.model, optimizer)
    forward = cast(nn.Module, torch.compile(model, dynamic=True)) if cfg.compile else model
    return _Prepared(accelerator, model, forward, optimizer, scheduler, batches, batches, cfg.max_steps, cfg.max_steps,
                     TokenCount(accelerator.device))


def _windows(loader: Iterable[Batch], size: int) -> Iterator[list[Batch]]:
    """The loader's batches `size` at a time, one optimiser step each; an epoch's last may hold fewer."""
    batches = iter(loader)
    while window := list(itertools.islice(batches, size)):
        yield window


def _optimiser_step(run: _Prepared, step: TrainingStep, window: list[Batch], cfg: TrainerConfig,
                    state: LoopState, stop_requested: bool) -> tuple[torch.Tensor, bool]:
    """One optimiser step on the micro-batches of `window`; returns its loss, a mean over units, and
    whether a stop was requested on any process (so that all stop after the same step).

    The units (rows, supervised tokens) of the whole window are counted before any forward pass,
    and micro-batch i's mean loss is scaled by `units_i / total` in its backward pass, so the
    gradient is that of one batch holding the window's rows, whatever its cut into micro-batches.
    Under `accelerate launch` `total` is summed across processes, and each loss is scaled by the
    number of processes as well, since DDP averages the gradients of the processes where the mean
    over all units needs their sum. Gradients are synchronised once, in the last backward pass.
    The processes exchange their unit and row counts and stop requests in one reduction, whose
    host read is the one synchronisation per step a multi-process run adds.
    """
    accelerator = run.accelerator
    units = [torch.as_tensor(step.units(batch), device=accelerator.device) for batch in window]
    samples = sum(rows(batch) for batch in window)
    total = torch.stack(units).sum().float()
    stopping = stop_requested
    if accelerator.num_processes > 1:
        local = torch.tensor([float(samples), float(stop_requested)], device=accelerator.device)
        counts = accelerator.reduce(torch.cat([total.reshape(1), local]), reduction="sum")
        total = counts[0]
        samples, raised = (int(v) for v in counts[1:].tolist())
        stopping = raised > 0
    total = total.clamp(min=1)
    state.samples += samples
    loss = torch.zeros((), device=accelerator.device)
    for i, (batch, count) in enumerate(zip(window, units)):
        share = count / total
        weight = share * accelerator.num_processes
        synced = nullcontext() if i == len(window) - 1 else accelerator.no_sync(run.model)
        with synced, _out_of_memory_hint(cfg, batch, state.step + 1):
            passed = step.backward(run.forward, batch, lambda mean: accelerator.backward(mean * weight))
        loss += passed.float() * share
        run.tokens.add(batch)
    with _out_of_memory_hint(cfg, window[-1], state.step + 1):
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    if cfg.ema is not None and state.ema_weights is not None:
        ema.update(state.ema_weights, run.unwrapped, cfg.ema)
    run.scheduler.step()
    return (accelerator.reduce(loss, reduction="sum") if accelerator.num_processes > 1 else loss), stopping


def _log(run: _Prepared, step: TrainingStep, cfg: TrainerConfig, state: LoopState, clock: _Clock,
         checkpoints: Checkpointing | None) -> dict[str, Any] | None:
    """The log record of a log step (every `trainer.logging_steps` and the last), checked finite,
    with the figures the training step measured since the last one."""
    if state.step % cfg.logging_steps and state.step != run.total_steps:
        return None
    elapsed = clock.elapsed()
    _count_tokens(run, state)
    record = {
        "step": state.step,
        "epoch": round(state.step / run.steps_per_epoch, 4),
        "loss": _running_mean(state),
        "lr": run.scheduler.get_last_lr()[0],
        "samples_per_second": round(state.samples / elapsed, 2) if elapsed else 0.0,
        "tokens_per_second": tokens_per_second(state, elapsed),
        **step.logged(),
    }
    _check_finite(record["loss"], state.step, record["lr"], checkpoints)
    state.history.append(record)
    cast(torch.Tensor, state.running_loss).zero_()  # on the device while training
    state.running_count = 0
    return record


def _count_tokens(run: _Prepared, state: LoopState) -> None:
    """Add the tokens counted on the device since the last call to `state` (a host sync; under
    `accelerate launch` a collective, so every process calls it at the same step)."""
    real, slots = run.tokens.take(run.accelerator)
    state.tokens += real
    state.token_slots += slots


def _evaluate(run: _Prepared, training: Training, cfg: TrainerConfig, state: LoopState, clock: _Clock) -> None:
    """Evaluate outside the training time, log it, and let the state keep the best weights (the
    moving average's, with `trainer.ema`)."""
    with ema.swapped_in(state.ema_weights, run.unwrapped):
        with clock.paused():
            metrics = training.evaluate(run.unwrapped)
        record = {"step": state.step, "epoch": round(state.step / run.steps_per_epoch, 4), "eval": metrics}
        state.history.append(record)
        training.callbacks.on_evaluate(state.step, record)
        state.evaluated(metrics, run.unwrapped, cfg)


def _finished(state: LoopState, run: _Prepared) -> bool:
    return state.step >= run.total_steps or state.stopped_early


def _running_mean(state: LoopState) -> float:
    """The mean step loss since the last log record (a host sync)."""
    return float(state.running_loss) / max(state.running_count, 1)


class _Clock:
    """Adds training time to `state.train_seconds`, leaving out the spans it is paused for."""

    def __init__(self, state: LoopState) -> None:
        self.state, self.since = state, time.perf_counter()

    def elapsed(self) -> float:
        return self.state.train_seconds + (time.perf_counter() - self.since)

    def lap(self) -> None:
        now = time.perf_counter()
        self.state.train_seconds += now - self.since
        self.since = now

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.lap()
        try:
            yield
        finally:
            self.since = time.perf_counter()


def _train_batches(lengths: list[int], cfg: TrainerConfig, seed: int,
                   processes: int) -> TrainBatches | TokenBudgetBatches:
    if cfg.max_tokens_per_batch is None:
        return TrainBatches(lengths, cfg.batch_size, seed, cfg.group_by_length, processes)
    try:
        return TokenBudgetBatches(lengths, cfg.max_tokens_per_batch, seed, processes)
    except ValueError as exc:
        raise ConfigError(
            f"trainer.max_tokens_per_batch={cfg.max_tokens_per_batch}: {exc}",
            hint=f"raise it to at least {max(lengths)}, or lower task.max_length",
        ) from exc


def _should_evaluate(cfg: TrainerConfig, step: int, end_of_epoch: bool, total_steps: int) -> bool:
    if cfg.eval_strategy is EvalStrategy.no:
        return False
    if step == total_steps:
        return True
    if cfg.eval_strategy is EvalStrategy.epoch:
        return end_of_epoch
    return step % cfg.eval_steps == 0


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
def _out_of_memory_hint(cfg: TrainerConfig, batch: Batch, step: int) -> Iterator[None]:
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
            hint=f"{fix} in less memory; then, in this order: {'; '.join(memory_levers(cfg))}",
        ) from exc


def _is_out_of_memory(exc: RuntimeError) -> bool:
    """CPU allocators raise a plain RuntimeError; CUDA ones torch.OutOfMemoryError."""
    text = str(exc)
    return "can't allocate memory" in text or "out of memory" in text.lower()
