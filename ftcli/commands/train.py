"""`ftcli train`: data → model → method → loop → run directory."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ftcli import ui
from ftcli.commands.summary import data_source, overrides_row, run_rows
from ftcli.config.schema import EMBEDDED_MODEL, ModelConfig, TrainConfig, plain
from ftcli.data.splits import Splits, load_splits, with_absolute_paths
from ftcli.engine import processes
from ftcli.engine.add_ons.compose import training_setup
from ftcli.engine.checkpoint import Checkpointing, checkpoints_dir, list_checkpoints, resume_point
from ftcli.engine.chunked_loss import chunked_step
from ftcli.engine.kernels import apply_kernels
from ftcli.engine.loop import Training, train_loop
from ftcli.engine.precision import mixed_precision
from ftcli.engine.resources import peak_memory_mb, reset_peak_memory, weights_mb
from ftcli.engine.state import LoopState
from ftcli.engine.throughput import speed_figures
from ftcli.errors import Interrupted, ModelError, NothingToDo, RunDirError
from ftcli.files import write_text_atomic
from ftcli.methods import METHODS, count_parameters, head_modules
from ftcli.models.loading import (
    architecture,
    build_model,
    build_tokenizer,
    can_carry,
    check_head,
    enable_gradient_checkpointing,
    fit_max_length,
    head_need,
    load_config,
    sync_pad_token,
    with_absolute_path,
)
from ftcli.models.quantization import prepare_for_training
from ftcli.runs.cached_features import CACHE_SETTINGS, FeatureCache
from ftcli.runs.directory import ENVIRONMENT, LABELS, METRICS, REWRITES, RunDir, write_config
from ftcli.runs.environment import environment
from ftcli.runs.meta_training import meta_train
from ftcli.runs.portable import make_portable
from ftcli.runs.rewrites import check_rewrite_runs
from ftcli.runs.teacher import check_teacher, with_absolute_teacher
from ftcli.runs.trained import frozen_models
from ftcli.runs.training_data import record_stream, say_training_data, training_features
from ftcli.runs.training_set import TrainingSet, Vocabulary
from ftcli.tasks import TASKS
from ftcli.tasks.notes import report, token_room
from ftcli.tasks.pipeline import split_scores

if TYPE_CHECKING:
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from ftcli.methods import Method
    from ftcli.methods.base import AdaptedModel
    from ftcli.tasks.base import Feature, Task, TaskKind

log = logging.getLogger(__name__)
T = TypeVar("T")


def run(cfg: TrainConfig, output_dir: Path) -> dict[str, Any]:
    from accelerate.utils import set_seed

    started = time.perf_counter()
    _quiet_libraries()
    cfg = replace(cfg, data=with_absolute_paths(cfg.data), model=with_absolute_path(cfg.model),
                  trainer=with_absolute_teacher(cfg.trainer))
    run_dir = RunDir(output_dir)
    kind, method = TASKS.get(cfg.task.name).impl, METHODS.get(cfg.method.name).impl
    resumable = _resumable(cfg)  # as given: `_with_defaults` fills in the rest from these
    rewrite_runs = check_rewrite_runs(cfg.data.augment.rewrite_runs)  # before any model loads
    resume = _open_run_dir(run_dir, cfg, resumable)
    checkpoints = Checkpointing(run_dir.path, cfg.trainer.save_every, cfg.trainer.keep_checkpoints, resumable, resume)
    if cfg.trainer.meta.tasks:  # meta-learning across several datasets instead of training on one
        meta = _continuable(lambda: meta_train(cfg, checkpoints, _LoggedProgress(run_dir), started), output_dir)
        return _finish(run_dir, meta.cfg, method, meta.model, meta.tokenizer, [], meta.metrics, "final metrics")
    model_config = _model_config(cfg, kind)

    splits = load_splits(cfg.data, cfg.task.name, cfg.seed, training=True)
    say_training_data(run_dir, splits, cfg.data, cfg.seed)
    labels = kind.label_names(splits.labelled(), cfg.task, cfg.data)
    training_set = TrainingSet.of(splits, cfg.task.text_columns(cfg.data))
    with processes.main_first():  # the main process writes the rewrites' cache; the others read it
        training_set.add_rewrites(rewrite_runs, run_dir.path / REWRITES)  # before the seed: loading a run draws from it
    set_seed(cfg.seed)
    tokenizer = build_tokenizer(cfg.model)
    teacher = check_teacher(cfg, kind, labels, tokenizer) if cfg.trainer.distill.teacher else None
    base = build_model(cfg.model, kind.model_class(), labels, **kind.model_config(cfg.task, model_config))
    sync_pad_token(base, tokenizer)
    apply_kernels(base, cfg.trainer)
    training_set.add_eda_copies(cfg.data.augment, cfg.seed, Vocabulary(tokenizer, base))
    if splits.shots or cfg.data.augment.active():
        ui.info(training_set.line())
    cfg = _with_defaults(cfg, kind, method, base)
    task = kind.bind(cfg.task, cfg.data, labels, tokenizer, frozen_models(cfg, kind, method, labels, tokenizer))
    cache = FeatureCache(task, cfg.task.name, cfg.task, cfg.data, labels, tokenizer)
    features = cache.encode_splits(splits.rows, splits.sources)
    _report_data(cfg, splits, features, labels, token_room(base, method.virtual_tokens(cfg.method)))
    model, params = _apply_method(cfg, method, base)
    with processes.main_first():  # what is computed once is cached by the main process, read by the others
        _precompute(task, model, features, cfg, run_dir)
        step = task.training_step() if teacher is None else teacher.teach(  # the teacher's logits, once
            splits.rows["train"], features["train"], checkpoints_dir(run_dir.path), cfg.trainer.eval_batch_size)
    if cfg.trainer.chunked_cross_entropy:
        step = chunked_step(step, model, cfg.trainer.cross_entropy_chunk_tokens)

    def evaluate(split: str, trained: nn.Module) -> dict[str, Any]:
        return split_scores(task, trained, features[split], cfg.trainer.eval_batch_size, cfg.trainer.precision)

    assert cfg.trainer.lr is not None  # `_with_defaults` gave it the method's rate
    step, lr_scale = training_setup(step, cfg.trainer, cfg.task.name, model, method.lr_scale(cfg.method))
    training = Training(
        model, training_features(splits, features, task), task.collator(), cfg.trainer.lr, cfg.seed,
        lambda m: evaluate("validation", m), _LoggedProgress(run_dir), step, lr_scale, checkpoints,
    )
    result = _continuable(lambda: train_loop(training, cfg.trainer), output_dir)
    record_stream(run_dir, splits)
    metrics: dict[str, Any] = {split: evaluate(split, model) for split in ("validation", "test") if split in features}
    metrics["train"] = {**_train_metrics(result, cfg, params, started, model), "training_rows": training_set.record(),
                        "feature_cache": cache.record()}
    return _finish(run_dir, cfg, method, model, tokenizer, labels, metrics, "final metrics (best checkpoint)")


def _quiet_libraries() -> None:
    """A fresh peak-memory count, and no log lines or progress bars from `transformers`."""
    import transformers

    reset_peak_memory()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _with_defaults(cfg: TrainConfig, kind: TaskKind[Any], method: Method[Any], model: PreTrainedModel) -> TrainConfig:
    """`cfg` with the settings left to ftcli resolved for this run, so `config.yaml` records them.

    `trainer.metric_for_best` null is the task's headline metric; `trainer.lr` null is the
    method's recommended rate; the task's settings the model decides are filled in
    (`TaskConfig.for_model`); the task's default `task.max_length` is lowered to fit the model's
    position table (a length given beyond it is refused).
    """
    trainer = cfg.trainer
    if trainer.metric_for_best is None:
        trainer = replace(trainer, metric_for_best=kind.best_metric(cfg.task))
    if trainer.lr is None:
        trainer = replace(trainer, lr=method.default_lr)
    task = cfg.task.for_model(model.config)
    default_length = type(task).max_length  # the schema's default: a length left at it is fitted to the model
    max_length = fit_max_length(model, task.max_length, default_length, method.virtual_tokens(cfg.method))
    return replace(cfg, trainer=trainer, task=replace(task, max_length=max_length))


def _open_run_dir(run_dir: RunDir, cfg: TrainConfig, resumable: dict[str, Any]) -> Any:
    """Check the run directory can take this run, find the checkpoint to resume from, and say what starts.

    In a distributed run the main process does this; the others wait for it, then read the
    checkpoint it resumes from (a refusal on the main process ends them with its exit code).
    """
    if not processes.is_main():
        processes.barrier()
        return resume_point(run_dir.path, cfg.trainer.resume, resumable) if cfg.trainer.resume else None
    resume = _prepare_run_dir(run_dir, cfg, resumable)
    processes.barrier()
    return resume


def _prepare_run_dir(run_dir: RunDir, cfg: TrainConfig, resumable: dict[str, Any]) -> Any:
    if cfg.trainer.resume is not None and run_dir.is_finished() and not cfg.overwrite:
        raise NothingToDo(f"{run_dir.path} already holds a finished run; nothing to resume (its metrics are in {METRICS})")
    run_dir.ensure_trainable(cfg.overwrite)
    resume = _resume_point(run_dir, cfg.trainer.resume, resumable, cfg.overwrite)
    _start_log(run_dir, resume)
    run_dir.write_json(ENVIRONMENT, environment())
    ui.print_summary(
        f"ftcli train → {run_dir.path}",
        {**run_rows(cfg), "data": _data_row(cfg), **overrides_row(cfg)},
    )
    if resume is not None:
        ui.info(f"resuming from {resume.path} (step {resume.step})")
    return resume


def _data_row(cfg: TrainConfig) -> str:
    """Where the rows come from: the data settings, or meta-training's datasets."""
    meta = cfg.trainer.meta
    if meta.tasks:
        return f"{meta.algorithm.value} meta-learning across {', '.join(meta.tasks)}"
    return data_source(cfg.data, cfg.task.name)


def _model_config(cfg: TrainConfig, kind: TaskKind[Any]) -> PretrainedConfig:
    """The model's `transformers` config, once checked that the model can carry the task's head;
    says why the task picked this model when none was named."""
    model_config = load_config(cfg.model)
    check_head(cfg.model, model_config, kind.model_class(), cfg.task.name)
    note = _picked_model_note(cfg, kind.model_class())
    if note:
        ui.info(note)
    return model_config


def _report_data(
    cfg: TrainConfig, splits: Splits, features: dict[str, list[Feature]], labels: list[str], room: int | None
) -> None:
    """Rows per split and where they come from, what encoding cut or dropped, and the labels."""
    ui.info(", ".join(f"{split}: {len(rows)} rows ({splits.sources[split]})" for split, rows in splits.rows.items()))
    for split, rows in splits.rows.items():
        report(features[split], len(rows), split, splits.sources[split], cfg.task.max_length, room,
               "train" if split == "train" else "eval")
    if labels:
        ui.info(f"labels: {', '.join(labels)}")


def _apply_method(cfg: TrainConfig, method: Method[Any], model: PreTrainedModel) -> tuple[AdaptedModel, dict[str, Any]]:
    """The model as the method trains it, and its parameter counts; a method that trains nothing is refused."""
    head = head_modules(model)
    model = prepare_for_training(model, cfg.trainer.gradient_checkpointing)  # a 4/8-bit base: PEFT's preparation
    adapted = method.apply(model, cfg.method, head)
    if cfg.trainer.gradient_checkpointing:
        enable_gradient_checkpointing(adapted)
    params = count_parameters(adapted, head).as_dict()
    if not params["trainable"]:
        raise ModelError(
            f"method={cfg.method.name} leaves nothing to train on this {model.config.model_type} model: "
            "it has no new task head",
            hint="for a language model use method=lora, adapter or full; with freeze set method.train_top_layers",
        )
    ui.print_parameters(params, cfg.method.name)
    return adapted, params


def _precompute(task: Task[Any], model: nn.Module, features: dict[str, list[Feature]], cfg: TrainConfig,
                run_dir: RunDir) -> None:
    """What the task computes once before training (reference log-probabilities), on the device the
    run trains on; kept with the run's checkpoints, so a resumed run reads it back."""
    from accelerate import PartialState

    from ftcli.engine.precision import autocast_for

    device = PartialState().device
    model.to(device)
    autocast = autocast_for(cfg.trainer.precision, device)
    task.precompute(model, features, checkpoints_dir(run_dir.path), cfg.trainer.eval_batch_size, autocast)


def _continuable(train: Callable[[], T], output_dir: Path) -> T:
    """`train()`; a run it stops on a signal says how to continue it."""
    try:
        return train()
    except Interrupted as exc:
        exc.hint = f"continue with: {_resume_command(output_dir)}"
        raise


def _finish(run_dir: RunDir, cfg: TrainConfig, method: Method[Any], model: AdaptedModel,
            tokenizer: PreTrainedTokenizerBase, labels: list[str], metrics: dict[str, Any],
            title: str) -> dict[str, Any]:
    """Save the finished run, drop its checkpoints, and say what it cost and scored."""
    _save(run_dir, cfg, method, model, tokenizer, labels, metrics)
    if processes.is_main():
        shutil.rmtree(checkpoints_dir(run_dir.path), ignore_errors=True)  # the run is whole; nothing left to resume
    ui.print_costs(metrics["train"])
    scores = {k: v for k, v in metrics.items() if k != "train"}
    if scores:
        ui.print_metrics(scores, title=title)
    ui.info(f"run directory: [bold]{run_dir.path}[/]")
    return metrics


def _train_metrics(result: LoopState, cfg: TrainConfig, params: dict[str, Any], started: float,
                   model: nn.Module) -> dict[str, Any]:
    """The `train` section of metrics.json: length, speed and cost of the run."""
    return {
        "steps": result.step,
        "epochs": round(result.epochs, 4),
        "samples_per_second": round(result.samples_per_second, 2),
        **speed_figures(result, model, mixed_precision(cfg.trainer.precision)),
        "train_seconds": round(result.train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "lr": cfg.trainer.lr,
        "parameters": params,
        **({"stream_rows": result.stream_rows} if result.stream_rows is not None else {}),
        **peak_memory_mb(),
    }


def _picked_model_note(cfg: TrainConfig, model_class: type) -> str | None:
    """Why the model is not the default one, when the task's config picked it because none was named.

    A task whose head the default model cannot carry names the offline model that can in its
    defaults list (`configs/task/summarization.yaml`); a model named on the command line wins.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or cfg.model.name_or_path == EMBEDDED_MODEL:
        return None
    hydra = HydraConfig.get()
    if any(_names_model(override) for override in hydra.overrides.task):
        return None
    default = load_config(ModelConfig(EMBEDDED_MODEL))
    if can_carry(default, model_class):
        return None
    return (
        f"model: {hydra.runtime.choices.get('model')} (task={cfg.task.name} needs {head_need(model_class)}; "
        f"the default minilm is {architecture(default)})"
    )


def _names_model(override: str) -> bool:
    """Whether a command-line override names the model: `model=...` or `model.name_or_path=...`."""
    return override.lstrip("+~").partition("=")[0] in ("model", "model.name_or_path")


def _resumable(cfg: TrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues (all but where to resume from)."""
    settings = plain(cfg)
    settings["trainer"].pop("resume")
    settings.pop("overwrite")
    for name in CACHE_SETTINGS:  # where features are kept changes nothing the run computes
        settings["data"].pop(name)
    return settings


def _resume_command(output_dir: Path) -> str:
    """The command line that continues this run: its overrides, its directory, trainer.resume=auto."""
    import shlex

    from hydra.core.hydra_config import HydraConfig

    given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [o for o in given if not o.lstrip("+~").startswith(("trainer.resume=", "overwrite="))]
    words = ["ftcli", "train", *kept, f"hydra.run.dir={output_dir}", "trainer.resume=auto"]
    return " ".join(shlex.quote(word) for word in words)


def _resume_point(run_dir: RunDir, setting: str | None, resumable: dict[str, Any], overwrite: bool) -> Any:
    """The checkpoint to continue from; without trainer.resume, an unfinished run's checkpoints are
    not silently replaced by a fresh start."""
    found = list_checkpoints(run_dir.path)
    if setting is not None:
        return resume_point(run_dir.path, setting, resumable)
    if found and not overwrite:
        raise RunDirError(
            f"{run_dir.path} holds checkpoints of an unfinished run (newest: {found[-1].name})",
            hint="continue it with trainer.resume=auto, or start over with overwrite=true",
        )
    shutil.rmtree(checkpoints_dir(run_dir.path), ignore_errors=True)
    return None


def _start_log(run_dir: RunDir, resume: Any) -> None:
    """A fresh run's log starts empty; a resumed one keeps the records up to its checkpoint."""
    if resume is None or not run_dir.log_file.exists():
        run_dir.log_file.unlink(missing_ok=True)
        return
    kept = [line for line in run_dir.log_file.read_text(encoding="utf-8").splitlines()
            if _logged_step(line) <= resume.step]
    write_text_atomic(run_dir.log_file, "".join(line + "\n" for line in kept))


def _logged_step(line: str) -> float:
    """A log record's step; a line cut short by a kill (or blank) sorts after every checkpoint."""
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return float("inf")


class _LoggedProgress(ui.TrainProgress):
    """The progress display, plus each log and eval record appended to train_log.jsonl as it happens."""

    def __init__(self, run_dir: RunDir) -> None:
        super().__init__()
        self.run_dir = run_dir

    def on_step(self, step: int, record: dict[str, Any] | None) -> None:
        super().on_step(step, record)
        if record is not None and processes.is_main():
            self.run_dir.append_log(record)

    def on_evaluate(self, step: int, record: dict[str, Any]) -> None:
        super().on_evaluate(step, record)
        if processes.is_main():
            self.run_dir.append_log(record)


def _save(
    run_dir: RunDir, cfg: TrainConfig, method: Method[Any], model: AdaptedModel, tokenizer: PreTrainedTokenizerBase,
    labels: list[str], metrics: dict[str, Any],
) -> None:
    """Artefact first, metrics.json last: a run directory with metrics.json is a finished run.

    The artefact's weight size is added to `metrics["train"]` once it is written.

    In a distributed run only the main process writes.
    """
    if not processes.is_main():
        return

    def write(directory: Path) -> None:
        method.save(model, directory, cfg.method)
        tokenizer.save_pretrained(directory)
        make_portable(directory)

    write_config(run_dir, cfg)
    run_dir.write_json(LABELS, {"labels": labels})
    artifact = run_dir.save_artifact(method.artifact, write)
    metrics["train"]["artifact_mb"] = weights_mb(artifact)
    run_dir.write_json(METRICS, metrics)
