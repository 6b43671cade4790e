"""The teacher of a distilled run (`trainer.distill.teacher`): checked, and its logits computed once.

Before anything loads, the config check asks that the teacher is a finished run
(`ftcli.cli.registered`). Once the student's labels and tokenizer exist, and before its model loads,
`check_teacher` asks that the student's task has classes to learn (not a generating or preference
task), that the teacher is a run of the same task family whose task has classes to teach, that it
was trained on the same label names (in any order: its classes are put in the student's order by
name), and, for per-token tasks (ner, qa), that it splits text into the same tokens.

`Teacher.teach` gives each training feature the teacher's logits (`ftcli.runs.logits`): a
per-text teacher reads the student's training rows with its own tokenizer, a per-token one the
student's own features. They are computed once, before training, and kept in the run's
checkpoints folder with a fingerprint of the teacher run and of what it read, as the reference
log-probabilities of task=preference are; a resumed run reads them back and never loads the
teacher.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ftcli import ui
from ftcli.config.schema import DataConfig, DistillConfig, TrainConfig, TrainerConfig
from ftcli.engine.distill import TEACHER, DistillStep
from ftcli.errors import ConfigError
from ftcli.files import write_bytes_atomic
from ftcli.runs.directory import CONFIG, LABELS, METRICS, RunDir, read_config
from ftcli.runs.logits import run_logits
from ftcli.runs.trained import load_trained, read_labels, saved_tokenizer
from ftcli.tasks import TASKS
from ftcli.tasks.class_outputs import ClassHead, NotClasses, class_head, label_difference, same_family, same_tokens

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ftcli.data.readers import Row
    from ftcli.tasks.base import Feature, TaskKind

CACHE = "teacher_logits.safetensors"
SOURCE = "the training rows, as the teacher reads them"


def with_absolute_teacher(trainer: TrainerConfig) -> TrainerConfig:
    """The teacher's run directory as an absolute path, so a saved config resumes from any directory."""
    teacher = trainer.distill.teacher
    if teacher is None:
        return trainer
    return replace(trainer, distill=replace(trainer.distill, teacher=str(Path(teacher).expanduser().resolve())))


@dataclass
class Teacher:
    """A checked teacher run: where it is, its labels, and how the student's head reads its logits."""

    run: RunDir
    labels: list[str]  # the student's, in the order its head has them: the teacher's logits are put in it
    head: ClassHead  # the student's
    settings: DistillConfig
    data: DataConfig  # the student's columns, which a per-text teacher reads the rows with

    def teach(self, rows: list[Row], features: list[Feature], store: Path, batch_size: int) -> DistillStep:
        """Put the teacher's logits for each training feature in it (under `TEACHER`), read from
        `store` when computed there before for the same teacher and inputs, and return the step that
        learns from them."""
        fingerprint = self._fingerprint(rows, features)
        path = store / CACHE
        logits = _read(path, fingerprint, self.head.per_token)
        if logits is not None:
            ui.info(f"teacher logits: read back from {path}")
        else:
            logits = self._computed(rows, features, batch_size)
            _write(path, fingerprint, logits)
            ui.info(f"teacher logits: computed by {self.run.path} for {len(features)} training features")
        for feature, values in zip(features, logits):
            feature[TEACHER] = values
        return DistillStep(self.head.loss, self.settings.temperature, self.settings.alpha)

    def _computed(self, rows: list[Row], features: list[Feature], batch_size: int) -> list[np.ndarray]:
        trained = load_trained(self.run.path).rebound(data=self.data)
        return run_logits(trained, self.head.per_token, rows, features, SOURCE, batch_size, self.labels)

    def _fingerprint(self, rows: list[Row], features: list[Feature]) -> str:
        """What the cached logits depend on: the teacher run, the student's label order, and what the
        teacher reads (the rows; per token, the student's tokens)."""
        digest = hashlib.sha256()
        for name in (CONFIG, LABELS, METRICS):
            digest.update((self.run.path / name).read_bytes())
        digest.update(json.dumps([self.labels, self.head.per_token]).encode())
        read: Any = [f["input_ids"] for f in features] if self.head.per_token else rows
        for item in read:
            digest.update(json.dumps(item, sort_keys=True, default=str).encode())
        return digest.hexdigest()


def check_teacher(cfg: TrainConfig, kind: TaskKind[Any], labels: list[str],
                  tokenizer: PreTrainedTokenizerBase) -> Teacher:
    """The teacher of `cfg`, checked against the student's task `kind`, `labels` and `tokenizer`
    before the student's model loads; of the teacher, only its config, labels and tokenizer are read.

    Raises:
        ConfigError: for a student task without classes to learn, a teacher of another task family
            or whose task has none to teach, another label set, or (per-token tasks) another vocabulary.
    """
    distill = cfg.trainer.distill
    assert distill.teacher is not None
    setting, run = f"trainer.distill.teacher={distill.teacher}", RunDir(distill.teacher)
    try:
        head = class_head(kind.bind(cfg.task, cfg.data, labels, tokenizer), spans=True)
    except NotClasses as exc:
        raise ConfigError(f"trainer.distill: task={cfg.task.name} cannot be distilled: {exc}",
                          hint="distil a text_classification, sentiment, pair_classification, ner or qa run, "
                          "or drop trainer.distill.teacher") from exc
    taught, teacher_labels = read_config(run), read_labels(run)
    if not same_family(taught.task, cfg.task):
        raise ConfigError(f"{setting} is a task={taught.task.name} run and this run is task={cfg.task.name}",
                          hint="the teacher must be a run of the same task (sentiment and text_classification "
                          "count as one)")
    try:
        own = TASKS.get(taught.task.name).impl.bind(taught.task, taught.data, teacher_labels, tokenizer)
        class_head(own, spans=True)
    except NotClasses as exc:
        raise ConfigError(f"{setting} cannot teach: {exc}", hint="name a single-label run as the teacher") from exc
    difference = label_difference(labels, teacher_labels)
    if difference:
        raise ConfigError(
            f"{setting} was trained on the labels {teacher_labels} and this run's are {labels}: "
            f"the teacher {difference}",
            hint="distil from a teacher trained on the same labels, or give this run the teacher's labels with "
            "data.label_names",
        )
    artifact = run.artifact()
    assert artifact is not None  # a finished run, as the config check made sure
    if head.per_token and not same_tokens(saved_tokenizer(artifact), tokenizer):
        raise ConfigError(
            f"{setting}: task={cfg.task.name} learns the teacher's scores token by token, and the teacher's tokenizer "
            "splits text differently from this model's (their vocabularies differ)",
            hint="train the teacher from a model with this model's tokenizer, or make the student from the teacher's "
            "model (model.num_layers keeps fewer of its layers)",
        )
    return Teacher(run, labels, head, distill, cfg.data)


def _read(path: Path, fingerprint: str, per_token: bool) -> list[np.ndarray] | None:
    """The logits `path` holds for `fingerprint`; None when it holds none, others, or a damaged file."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as kept:
            if (kept.metadata() or {}).get("fingerprint") != fingerprint:
                return None
            flat, lengths = kept.get_tensor("logits"), kept.get_tensor("lengths")
    except (SafetensorError, OSError, KeyError):
        return None  # computed again
    rows = np.split(flat, np.cumsum(lengths)[:-1])
    return rows if per_token else [row[0] for row in rows]


def _write(path: Path, fingerprint: str, logits: list[np.ndarray]) -> None:
    """`logits` (one (classes,) or (tokens, classes) array per feature) as one safetensors file."""
    from safetensors.numpy import save

    rows = [np.atleast_2d(values) for values in logits]
    tensors = {"logits": np.concatenate(rows).astype(np.float32), "lengths": np.array([len(r) for r in rows])}
    write_bytes_atomic(path, save(tensors, metadata={"fingerprint": fingerprint}))
