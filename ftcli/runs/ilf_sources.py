"""Where each field of an ILF round comes from: a finished run that writes it, or a file of human feedback.

`ftcli ilf` fills three fields of every input row, one stage each: the policy run writes the
`output`, a critique run or `feedback_file` gives the `feedback`, and the refine run writes the
`refinement`. A row that holds a field already keeps it. Each run is checked for its role from its
config alone, before any model loads (`RunSource.check`); it is loaded only while its stage writes,
then released (`RunSource.open`), so one model at a time is in memory. A run reads rows under the
column names it trained with (`run_row`): a critique run trained with `task.output_column=answer`
gets each output as `answer`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ftcli import ui
from ftcli.config.schema import IlfConfig, TaskConfig, TrainConfig
from ftcli.data.readers import Row, read_rows
from ftcli.engine.resources import release_memory
from ftcli.errors import ConfigError, DataError
from ftcli.runs.directory import RunDir, finished_run
from ftcli.runs.trained import TrainedRun, load_trained
from ftcli.tasks.chat import RowFormat
from ftcli.tasks.feedback import FeedbackConfig
from ftcli.tasks.feedback_rows import INPUTS, Objective
from ftcli.tasks.generating import GENERATED
from ftcli.tasks.instruction import InstructionConfig
from ftcli.tasks.notes import SHOWN_RECORDS, row_notes
from ftcli.tasks.pipeline import row_predictions

FIELDS = ("output", "feedback", "refinement")  # what the stages write, in the order they run
INPUT = "input"  # the source of a field the input row held already
WritingTask = InstructionConfig | FeedbackConfig


@dataclass
class RoundRow:
    """One input row, and the fields the round has for it so far, each with where it came from."""

    index: int  # the row's record number in the input
    row: Row
    prompt: str
    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """The prompt, or a field the round has already."""
        return self.prompt if name == "prompt" else self.values[name]


class Writer(Protocol):
    """Writes one field for a chunk of rows; `seed` seeds sampled generation, per chunk."""

    def __call__(self, rows: list[RoundRow], seed: int) -> list[str]: ...


class Source(Protocol):
    """Where one stage's field comes from."""

    @property
    def name(self) -> str:
        """What each row it fills records as its source: an absolute run directory or file path."""

    def describe(self) -> dict[str, Any]:
        """What `round.json` records of it."""

    def identity(self) -> str:
        """A digest that changes when what it writes would: the resume guard compares it."""

    def open(self) -> AbstractContextManager[Writer]:
        """The writer, ready while the block runs (a run's model is loaded for it and released after)."""


@dataclass(frozen=True)
class Role:
    """What a stage needs: the setting that names its run, the runs that fit, and how to train one."""

    setting: str
    expected: str
    fits: Callable[[TaskConfig], bool]
    train: str


def _writes_answers(task: TaskConfig) -> bool:
    return isinstance(task, InstructionConfig) or (
        isinstance(task, FeedbackConfig) and task.objective in (Objective.imitate, Objective.hindsight))


def _critiques(task: TaskConfig) -> bool:
    return isinstance(task, FeedbackConfig) and task.objective == Objective.critique


def _refines(task: TaskConfig) -> bool:
    return isinstance(task, FeedbackConfig) and task.objective == Objective.refine


ROLES = {
    "output": Role("policy_run", "a task=instruction run, or a task=feedback run with task.objective=imitate or "
                   "hindsight", _writes_answers, "ftcli train task=instruction data.train_file=..."),
    "feedback": Role("critique_run", "a task=feedback run with task.objective=critique", _critiques,
                     "ftcli train task=feedback task.objective=critique data.train_file=..."),
    "refinement": Role("refine_run", "a task=feedback run with task.objective=refine", _refines,
                       "ftcli train task=feedback task.objective=refine data.train_file=..."),
}


def round_sources(cfg: IlfConfig, rows: list[RoundRow]) -> dict[str, Source | None]:
    """The source of each field, checked against the rows: a run of the wrong kind, or a row that
    lacks a field no setting gives, is refused before any model loads. None: every row has the field."""
    runs = {"output": cfg.policy_run, "feedback": cfg.critique_run, "refinement": cfg.refine_run}
    sources: dict[str, Source | None] = {}
    for name in FIELDS:
        missing = next((row for row in rows if name not in row.values), None)
        given: Source | None = None
        if runs[name]:
            given = RunSource.check(ROLES[name], str(runs[name]), cfg.batch_size, cfg.max_new_tokens)
        elif name == "feedback" and cfg.feedback_file:
            given = FeedbackFile.match(cfg.feedback_file, rows, cfg)
        if given is None and missing is not None:
            needs = "critique_run= or feedback_file=" if name == "feedback" else f"{ROLES[name].setting}="
            raise ConfigError(
                f"input={cfg.input}: record {missing.index} has no {name!r}, and no {needs} gives one",
                hint=f"name {needs} ({ROLES[name].expected}{' or a file of feedback' if name == 'feedback' else ''})",
            )
        if given is not None and missing is None:
            ui.warn(f"every input row holds its {name} already: {given.name} is not used")
        sources[name] = given if missing is not None else None
    return sources


@dataclass(frozen=True)
class RunSource:
    """A finished run that writes one field, read for its role without loading its model."""

    role: Role
    path: Path  # absolute
    cfg: TrainConfig
    batch_size: int | None  # None: the run's trainer.eval_batch_size
    max_new_tokens: int | None  # None: the run's own

    @classmethod
    def check(cls, role: Role, path: str, batch_size: int | None, max_new_tokens: int | None) -> RunSource:
        """The run at `path`, refused unless it is a finished run that fits `role`."""
        run, cfg = finished_run(role.setting, path)
        if not role.fits(cfg.task):
            other = next((r for r in ROLES.values() if r.fits(cfg.task)), None)
            raise ConfigError(
                f"{role.setting}={path} is a {_kind(cfg.task)} run; {role.setting} needs {role.expected}",
                hint=f"it fits {other.setting}=; give {role.setting} another run" if other
                else f"give {role.setting} one, e.g. trained with `{role.train}`",
            )
        return cls(role, run.path, cfg, batch_size, max_new_tokens)

    @property
    def name(self) -> str:
        return str(self.path)

    def describe(self) -> dict[str, Any]:
        task = self.cfg.task
        return {"run_dir": str(self.path), "task": task.name,
                "objective": task.objective.value if isinstance(task, FeedbackConfig) else None,
                "model": self.cfg.model.name_or_path, "method": self.cfg.method.name}

    def identity(self) -> str:
        """The run's config and final metrics: the same folder trained again reads as another run."""
        return RunDir(self.path).identity()

    @contextmanager
    def open(self) -> Iterator[Writer]:
        writer = RunWriter(_with_max_new_tokens(load_trained(self.path), self.max_new_tokens), self)
        try:
            yield writer
        finally:
            writer.close()
            release_memory()


class RunWriter:
    """A loaded run writing one field: each chunk of rows under its own column names, through its
    task's generation, in its batches and precision."""

    def __init__(self, trained: TrainedRun, source: RunSource) -> None:
        self.trained: TrainedRun | None = trained
        self.source = source
        self.batch_size = source.batch_size or trained.cfg.trainer.eval_batch_size
        self.cut: list[int] = []  # rows whose prompt was longer than the run's task.max_length

    def __call__(self, rows: list[RoundRow], seed: int) -> list[str]:
        from accelerate.utils import set_seed

        trained = self.trained
        if trained is None:
            raise RuntimeError(f"{self.source.role.setting} was released; open it again")
        task = trained.cfg.task
        if not isinstance(task, (InstructionConfig, FeedbackConfig)):  # `RunSource.check` keeps these out
            raise ConfigError(f"{self.source.role.setting}={self.source.path} does not write text")
        set_seed(seed)
        records = [run_row(task, row) for row in rows]
        features = trained.task.encode(records, f"the rows for {self.source.role.setting}", with_labels=False)
        predictions = row_predictions(trained.task, trained.model, features, self.batch_size,
                                      trained.cfg.trainer.precision)
        self.cut += [rows[note.row].index for note in row_notes(features, len(rows)) if note.cut]
        return [str(prediction[GENERATED]) for prediction in predictions]

    def close(self) -> None:
        """Drop the model, after warning about the prompts it read cut short."""
        if self.cut and self.trained is not None:
            shown = ", ".join(map(str, self.cut[:SHOWN_RECORDS])) + (", ..." if len(self.cut) > SHOWN_RECORDS else "")
            ui.warn(f"{self.source.role.setting}: {len(self.cut)} prompts were longer than its task.max_length="
                    f"{self.trained.cfg.task.max_length} tokens and lost their start (rows {shown})")
        self.trained = None


def run_row(task: WritingTask, row: RoundRow) -> Row:
    """The row a run reads, under its own columns: a feedback run's objective inputs, or an
    instruction run's prompt in the row format it trained on."""
    if isinstance(task, FeedbackConfig):
        return {task.columns.of(name): row.text(name) for name in INPUTS[task.objective]}
    if task.format is RowFormat.messages:
        return {task.messages_column: [{"role": "user", "content": row.prompt}]}
    if task.format is RowFormat.alpaca:
        return {task.instruction_column: row.prompt}
    return {task.prompt_column: row.prompt}


def _with_max_new_tokens(trained: TrainedRun, max_new_tokens: int | None) -> TrainedRun:
    task = trained.cfg.task
    if max_new_tokens is None or not isinstance(task, (InstructionConfig, FeedbackConfig)):
        return trained
    return trained.rebound(task=replace(task, generation=replace(task.generation, max_new_tokens=max_new_tokens)))


def _kind(task: TaskConfig) -> str:
    if isinstance(task, FeedbackConfig):
        return f"task=feedback task.objective={task.objective.value}"
    return f"task={task.name}"


@dataclass(frozen=True)
class FeedbackFile:
    """Feedback people wrote, one row of `feedback_file` per input row, matched when the round starts."""

    path: Path  # absolute
    feedback: list[str]  # by input row
    matched_by: str  # "id" (`id_column`) or "order"
    digest: str

    @classmethod
    def match(cls, path: str, rows: list[RoundRow], cfg: IlfConfig) -> FeedbackFile:
        """Each input row's feedback: by `id_column` when both files have it, else by order; refused,
        naming the row, when a row has no match, the counts differ, or a row's prompt is not the input's."""
        file = Path(path).expanduser().resolve()
        given = read_rows(path, "feedback_file")
        ids = _ids(given, cfg.id_column, f"feedback_file={path}")
        own = _ids([row.row for row in rows], cfg.id_column, f"input={cfg.input}")
        if ids is not None and own is not None:
            at = {key: number for number, key in enumerate(ids)}
            for row, key in zip(rows, own):
                if key not in at:
                    raise DataError(f"input={cfg.input}: record {row.index} has {cfg.id_column}={key!r}, which no "
                                    f"row of feedback_file={path} has", hint="give every input row its feedback")
            extra = sorted(set(at) - set(own), key=at.__getitem__)
            if extra:
                raise DataError(f"feedback_file={path}: record {at[extra[0]]} has {cfg.id_column}={extra[0]!r}, "
                                f"which no input row has ({len(given)} feedback rows for {len(rows)} inputs)",
                                hint="give feedback for the input's rows only, or check the input= file")
            matched, how = [given[at[key]] for key in own], "id"
        elif len(given) != len(rows):
            raise DataError(
                f"feedback_file={path} has {len(given)} rows and input={cfg.input} has {len(rows)}; without "
                f"an {cfg.id_column!r} column in both, the rows are matched by order",
                hint=f"give one feedback row per input row, in the same order, or an {cfg.id_column!r} in both",
            )
        else:
            matched, how = given, "order"
        feedback = [_feedback(entry, row, path, how, cfg) for entry, row in zip(matched, rows)]
        return cls(file, feedback, how, hashlib.sha256(file.read_bytes()).hexdigest())

    @property
    def name(self) -> str:
        return str(self.path)

    def describe(self) -> dict[str, Any]:
        return {"file": str(self.path), "matched_by": self.matched_by}

    def identity(self) -> str:
        return self.digest

    @contextmanager
    def open(self) -> Iterator[Writer]:
        yield lambda rows, seed: [self.feedback[row.index] for row in rows]


def _ids(rows: list[Row], column: str, what: str) -> list[str] | None:
    """Each row's id as text (so a csv's "7" matches a jsonl's 7), or None when no row has one;
    a file whose rows have ids only in part, or the same id twice, is refused."""
    if not any(column in row for row in rows):
        return None
    ids: dict[str, int] = {}
    for number, row in enumerate(rows):
        value = row.get(column)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise DataError(f"{what}: record {number} has {column}={value!r}; ids are text or whole numbers, "
                            "and the file's other rows have one", hint=f"give every row an {column!r}, or none")
        key = str(value)
        if key in ids:
            raise DataError(f"{what}: records {ids[key]} and {number} have the same {column}={key!r}",
                            hint="give each row its own id")
        ids[key] = number
    return list(ids)


def _feedback(entry: Row, row: RoundRow, path: str, how: str, cfg: IlfConfig) -> str:
    """The feedback of `entry`, the feedback row matched to input `row`, refused unless it is text
    given for that row's prompt."""
    where = f"feedback_file={path}: the row for input record {row.index} (matched by {how})"
    prompt = entry.get(cfg.prompt_column)
    if isinstance(prompt, str) and prompt.strip() != row.prompt.strip():
        raise DataError(f"{where} has another {cfg.prompt_column!r}: {prompt[:60]!r}, not {row.prompt[:60]!r}",
                        hint="match the feedback to its prompts (by an id column in both files, or by order)")
    value = entry.get(cfg.feedback_column)
    if not isinstance(value, str):
        found = "no" if value is None else f"a {type(value).__name__} in its"
        raise DataError(f"{where} has {found} {cfg.feedback_column!r} column of text",
                        hint="set feedback_column to the file's column of feedback")
    return value
