"""`ftcli train` with `trainer.meta.tasks`: an encoder meta-learned across several classification datasets.

Each dataset is read and encoded as the task encodes training rows (its columns, truncation and
label checks), with a label set of its own. Episodes are drawn from them (`ftcli.data.episodes`),
and each is one outer step of Reptile or FOMAML (`ftcli.engine.meta`) on the model the task would
fine-tune, less its head's last layer. The command then writes what an ordinary run writes; its
`model/` folder is that model, which `ftcli train ... model.name_or_path=<run dir>` loads with a
fresh head (`ftcli.models.sources.resolve`), and its `labels.json` is empty: it has no head.

The log gets a record every `trainer.logging_steps` episodes and at the end: the query loss and
accuracy after adapting and the accuracy before, averaged over the episodes since the record
before (their running sums are kept in checkpoints, so a resumed run logs what the uninterrupted
one does). Every `trainer.eval_steps` episodes and at the end (unless `trainer.eval_strategy=no`),
the same figures over `trainer.meta.eval_episodes` fixed episodes, per dataset too, with dropout
drawn from a seed of their own so that they leave the training's random state alone. Those
episodes come from the training datasets: they tell how fast the encoder adapts to these tasks,
not to a new one. The final weights are kept; there is no best checkpoint to pick.

A checkpoint holds θ, the outer optimiser, the episode counter, torch's random state (dropout),
the log so far and the running sums (`ftcli.engine.checkpoint`); episodes are drawn from the seed
and their index alone, so nothing else is needed to carry on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ftcli import ui
from ftcli.config.schema import EvalStrategy, TrainConfig
from ftcli.data.episodes import Episode, EpisodeSampler, TaskRows
from ftcli.data.readers import read_rows
from ftcli.data.splits import Splits
from ftcli.engine.checkpoint import Checkpointing, restore, restore_rng
from ftcli.engine.loop import Callbacks
from ftcli.engine.meta import Adaptation, EpisodeBatch, InnerLoop, adaptation, meta_step, without_last_layer
from ftcli.engine.precision import autocast_for
from ftcli.engine.resources import peak_memory_mb
from ftcli.engine.signals import StopRequest
from ftcli.engine.state import LoopState
from ftcli.errors import DataError, TrainingError
from ftcli.methods import METHODS, count_parameters, head_modules
from ftcli.models.loading import (
    build_model,
    build_tokenizer,
    check_head,
    enable_gradient_checkpointing,
    fit_max_length,
    load_config,
    sync_pad_token,
)
from ftcli.tasks import TASKS
from ftcli.tasks.notes import report, token_room

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ftcli.engine.meta import Autocast
    from ftcli.tasks.base import Feature, Task, TaskKind

PLACEHOLDER_LABELS = ["0", "1"]  # the size of the head's last layer, which is removed before training
EVAL_SECTION = "eval_episodes"  # metrics.json's section of the evaluation episodes' figures


@dataclass
class MetaTask:
    """One dataset of the run: its short name, the task bound to its labels, its encoded rows."""

    name: str
    task: Task[Any]
    features: list[Feature]
    rows: TaskRows


@dataclass
class MetaTrained:
    """What meta-training leaves for `train` to save: the config as resolved, the model, its tokenizer, the metrics."""

    cfg: TrainConfig
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    metrics: dict[str, Any]


def meta_train(cfg: TrainConfig, checkpoints: Checkpointing, callbacks: Callbacks, started: float) -> MetaTrained:
    """Meta-train the task's model across `cfg.trainer.meta.tasks`, from `checkpoints.resume` when given."""
    kind = TASKS.get(cfg.task.name).impl
    _warn_ignored(cfg)
    model, tokenizer = _model(cfg, kind)
    cfg = _with_defaults(cfg, model)
    meta = cfg.trainer.meta
    tasks = _read_tasks(cfg, kind, tokenizer, token_room(model, 0))
    sampler = EpisodeSampler([task.rows for task in tasks], meta.ways, meta.shots, meta.queries, cfg.seed)
    params = _for_episodes(model, cfg)
    run, state = _MetaRun.start(cfg, model, tasks, sampler, checkpoints)
    run.train(state, checkpoints, callbacks)
    train = {
        "episodes": state.step,
        "algorithm": meta.algorithm.value,
        "meta_lr": meta.step_size(),
        **{key: value for key, value in _last(state, "loss").items() if key in FIGURES},
        "samples_per_second": round(state.samples_per_second, 2),
        "train_seconds": round(state.train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "parameters": params,
        **peak_memory_mb(),
    }
    evaluated = _last(state, "eval").get("eval")
    return MetaTrained(cfg, model, tokenizer, {"train": train, **({EVAL_SECTION: evaluated} if evaluated else {})})


def _model(cfg: TrainConfig, kind: TaskKind[Any]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model the task fine-tunes (its head's size a placeholder) and its tokenizer, built under the run's seed."""
    from accelerate.utils import set_seed

    model_config = load_config(cfg.model)
    check_head(cfg.model, model_config, kind.model_class(), cfg.task.name)
    set_seed(cfg.seed)
    tokenizer = build_tokenizer(cfg.model)
    model = build_model(cfg.model, kind.model_class(), PLACEHOLDER_LABELS, **kind.model_config(cfg.task, model_config))
    sync_pad_token(model, tokenizer)
    return model, tokenizer


def _for_episodes(model: PreTrainedModel, cfg: TrainConfig) -> dict[str, Any]:
    """Make `model` what the episodes train, in place: the method's trainable weights, less the head's
    last layer; its parameter counts."""
    head = head_modules(model)
    METHODS.get(cfg.method.name).impl.apply(model, cfg.method, head)
    without_last_layer(model, head)
    if cfg.trainer.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    params = count_parameters(model, []).as_dict()
    ui.print_parameters(params, cfg.method.name)
    return params


def _with_defaults(cfg: TrainConfig, model: PreTrainedModel) -> TrainConfig:
    """`cfg` with what meta-training resolves recorded: absolute dataset paths, the outer step size,
    and the task's default `max_length` fitted to the model's position table."""
    meta = cfg.trainer.meta
    tasks = [str(Path(task).expanduser().resolve()) if Path(task).expanduser().exists() else task
             for task in meta.tasks]
    meta = replace(meta, tasks=tasks, meta_lr=meta.step_size())
    max_length = fit_max_length(model, cfg.task.max_length, type(cfg.task).max_length)
    return replace(cfg, trainer=replace(cfg.trainer, meta=meta), task=replace(cfg.task, max_length=max_length))


def _warn_ignored(cfg: TrainConfig) -> None:
    """Say which ordinary training settings given here meta-training does not read."""
    trainer = cfg.trainer
    ignored = {"trainer.max_steps": trainer.max_steps, "trainer.lr": trainer.lr}
    for key, value in ignored.items():
        if value is not None:
            ui.warn(f"{key}={value} does not apply to meta-training, which runs trainer.meta.episodes outer steps "
                    "of trainer.meta.meta_lr, each after inner steps of trainer.meta.inner_lr")


def _read_tasks(cfg: TrainConfig, kind: TaskKind[Any], tokenizer: PreTrainedTokenizerBase,
                room: int | None) -> list[MetaTask]:
    """Every dataset of `trainer.meta.tasks`, read and encoded with a label set of its own."""
    paths = cfg.trainer.meta.tasks
    tasks = []
    for index, (path, name) in enumerate(zip(paths, short_names(paths))):
        setting = f"trainer.meta.tasks[{index}]"
        rows = read_rows(path, setting)[:cfg.data.max_train_samples]
        if not rows:
            raise DataError(f"{setting}={path} holds no rows", hint="give a file with labelled rows")
        data = replace(cfg.data, train_file=path)
        labels = kind.label_names(Splits({"train": rows}, {"train": path}), cfg.task, data)
        task = kind.bind(cfg.task, data, labels, tokenizer)
        features = task.encode(rows, path)
        report(features, len(rows), name, path, cfg.task.max_length, room, "train")
        tasks.append(MetaTask(name, task, features, TaskRows(name, labels, [int(f["labels"]) for f in features])))
        ui.info(f"{name}: {len(rows)} rows, {len(labels)} classes ({', '.join(labels)})")
    return tasks


def short_names(paths: list[str]) -> list[str]:
    """The fewest trailing parts of each path that tell the paths apart (`trec/train.jsonl`)."""
    parts = [Path(path).parts for path in paths]
    for depth in range(1, max(map(len, parts), default=0) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return list(paths)


FIGURES = ("loss", "accuracy", "accuracy_before")  # what each episode's query rows tell, as in `Adaptation`


@dataclass
class _Pace:
    """Rows and seconds since the last log record, for its speed."""

    samples: int = 0
    seconds: float = 0.0

    def add(self, samples: int, seconds: float) -> None:
        self.samples, self.seconds = self.samples + samples, self.seconds + seconds

    def per_second(self) -> float:
        return round(self.samples / self.seconds, 2) if self.seconds else 0.0


@dataclass
class _MetaRun:
    """The objects of one meta-training run, and its episode loop."""

    cfg: TrainConfig
    model: PreTrainedModel
    tasks: list[MetaTask]
    sampler: EpisodeSampler
    optimizer: torch.optim.Optimizer
    scheduler: Any
    autocast: Autocast
    device: torch.device

    @classmethod
    def start(cls, cfg: TrainConfig, model: PreTrainedModel, tasks: list[MetaTask], sampler: EpisodeSampler,
              checkpoints: Checkpointing) -> tuple[_MetaRun, LoopState]:
        """The run on the device, with a plain SGD outer optimiser of the meta step size; restored
        from `checkpoints.resume`, random state included, when there is one."""
        from accelerate import PartialState

        device = PartialState().device
        model.to(device).train()
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                    lr=cfg.trainer.meta.step_size())
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)  # a constant step size
        state = LoopState()
        if checkpoints.resume is not None:
            state = restore(checkpoints.resume, model, optimizer, scheduler)
            restore_rng(checkpoints.resume)
        autocast = autocast_for(cfg.trainer.precision, device)
        return cls(cfg, model, tasks, sampler, optimizer, scheduler, autocast, device), state

    @property
    def inner(self) -> InnerLoop:
        meta = self.cfg.trainer.meta
        return InnerLoop(meta.algorithm, meta.inner_steps, meta.inner_lr)

    def train(self, state: LoopState, checkpoints: Checkpointing, callbacks: Callbacks) -> None:
        """Run the episodes from `state.step` to the last, logging, evaluating and checkpointing."""
        from accelerate import PartialState

        total, trainer = self.cfg.trainer.meta.episodes, self.cfg.trainer
        pace = _Pace()
        callbacks.on_train_begin(total)
        with StopRequest() as stop:
            try:
                while state.step < total:
                    pace.add(*self._episode(state))
                    if state.step % trainer.logging_steps == 0 or state.step == total:
                        callbacks.on_step(state.step, self._log(state, pace))
                        pace = _Pace()
                    else:
                        callbacks.on_step(state.step, None)
                    if self._evaluates(state.step):
                        record = {"step": state.step, "epoch": self._epochs(state), "eval": self.evaluate()}
                        state.history.append(record)
                        callbacks.on_evaluate(state.step, record)
                    interrupted = stop.signal is not None
                    if checkpoints.due(state.step, total) or interrupted:
                        checkpoints.save(PartialState(), self.model, self.optimizer, self.scheduler, state)
                    if interrupted and stop.signal is not None:
                        raise checkpoints.interrupted(stop.signal.name, state.step, total)
            finally:
                callbacks.on_train_end()

    def _episode(self, state: LoopState) -> tuple[int, float]:
        """One outer step on episode `state.step`, counted in `state` with its figures; its rows and seconds."""
        episode = self.sampler.train_episode(state.step)
        began = time.perf_counter()
        figures = meta_step(self.model, self.batch(episode), self.inner, self.optimizer, self.autocast)
        self.scheduler.step()
        seconds, samples = time.perf_counter() - began, _rows(episode)
        state.step, state.samples = state.step + 1, state.samples + samples
        state.train_seconds += seconds
        for key in FIGURES:
            state.running_figures[key] = state.running_figures.get(key, 0.0) + getattr(figures, key)
        state.running_count += 1
        return samples, seconds

    def _evaluates(self, step: int) -> bool:
        """Whether the evaluation episodes run after episode `step`: every `trainer.eval_steps` and
        after the last, unless `trainer.meta.eval_episodes` is 0 or `trainer.eval_strategy` is no."""
        trainer = self.cfg.trainer
        if not trainer.meta.eval_episodes or trainer.eval_strategy is EvalStrategy.no:
            return False
        return step % trainer.eval_steps == 0 or step == trainer.meta.episodes

    def batch(self, episode: Episode) -> EpisodeBatch:
        """The episode's support and query rows, collated on the device with their episode classes as labels."""
        task = self.tasks[episode.task]
        collate = task.task.collator()

        def collated(part: list[list[int]]) -> Any:
            rows, labels = Episode.labelled(part)
            batch = collate([{**task.features[row], "labels": label} for row, label in zip(rows, labels)])
            return {key: value.to(self.device) for key, value in batch.items()}

        return EpisodeBatch(collated(episode.support), collated(episode.query), len(episode.classes))

    def evaluate(self) -> dict[str, Any]:
        """The mean figures of the evaluation episodes, over all of them and per dataset."""
        count = self.cfg.trainer.meta.eval_episodes
        by_task: dict[int, list[Adaptation]] = {}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed)
            for index in range(count):
                episode = self.sampler.eval_episode(index)
                by_task.setdefault(episode.task, []).append(
                    adaptation(self.model, self.batch(episode), self.inner, self.autocast))
        every = [figures for done in by_task.values() for figures in done]
        return {**_means(every),
                "tasks": {self.tasks[task].name: _means(done) for task, done in sorted(by_task.items())}}

    def _log(self, state: LoopState, pace: _Pace) -> dict[str, Any]:
        """The log record of the episodes since the last one, checked finite and kept in the history;
        the state's running sums start again."""
        means = {key: state.running_figures.get(key, 0.0) / max(state.running_count, 1) for key in FIGURES}
        state.running_figures, state.running_count = {}, 0
        record = {
            "step": state.step,
            "epoch": self._epochs(state),
            **{key: round(value, 6) for key, value in means.items()},
            "lr": self.scheduler.get_last_lr()[0],
            "samples_per_second": pace.per_second(),
        }
        if not math.isfinite(means["loss"]):
            raise TrainingError(
                f"the query loss after adapting became {means['loss']} by episode {state.step}",
                hint="lower trainer.meta.inner_lr (or trainer.meta.meta_lr), and start again with overwrite=true",
            )
        state.history.append(record)
        return record

    def _epochs(self, state: LoopState) -> float:
        """Rows drawn so far over the rows of all datasets: how often each row was seen, on average."""
        return round(state.samples / sum(len(task.features) for task in self.tasks), 4)


def _rows(episode: Episode) -> int:
    return sum(len(rows) for rows in (*episode.support, *episode.query))


def _means(done: list[Adaptation]) -> dict[str, float]:
    return {key: round(sum(getattr(figures, key) for figures in done) / len(done), 6) for key in FIGURES}


def _last(state: LoopState, key: str) -> dict[str, Any]:
    """The newest history record holding `key` (a log record: "loss"; an evaluation: "eval"), or {}."""
    return next((record for record in reversed(state.history) if key in record), {})
