"""The run directory: what `train` writes and `eval`, `predict` and `export` read back.

Layout (documented in the README):

    config.yaml        the resolved, validated training config
    labels.json        {"labels": [...]}: label names in id order
    metrics.json       {"<split>": {metric: value}}: final scores, one object per split
    train_log.jsonl    one JSON object per logged step and per evaluation
    train.log          Hydra's job log: what ftcli printed, warnings and errors, timestamped
    environment.json   the versions of Python, ftcli (and its git commit) and its libraries
    model/             full and freeze: `save_pretrained` folder with the tokenizer
    adapter/           adapter methods: PEFT adapter folder (head included) with the tokenizer
    checkpoints/       while training: step-<N>/ folders to resume from (`ftcli.engine.checkpoint`)
    .hydra/            Hydra's record of the composed config and the overrides

Files are written to a temporary name and renamed, and artefact folders are built beside their
final name and swapped in, so a killed run never leaves a half-written file or folder; both get
the modes the user's umask gives a plain `open()` or `mkdir()`, not the temporary files' 0600.
A `train` refused before it trains puts back what Hydra and it wrote first (`leave_as_found`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftcli.errors import RunDirError
from ftcli.jsonl import jsonl_line

CONFIG = "config.yaml"
LABELS = "labels.json"
METRICS = "metrics.json"
TRAIN_LOG = "train_log.jsonl"
ENVIRONMENT = "environment.json"
ARTIFACTS = ("model", "adapter")
HYDRA_RECORD = ".hydra"  # Hydra's record of the composed config and the overrides


class RunDir:
    """Paths and atomic reads/writes of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def log_file(self) -> Path:
        return self.path / TRAIN_LOG

    def is_finished(self) -> bool:
        return self.metrics_file.exists() and self.artifact() is not None

    def artifact(self) -> Path | None:
        """The saved model or adapter folder, whichever this run has."""
        found = [self.path / name for name in ARTIFACTS if (self.path / name).is_dir()]
        return found[0] if found else None

    def ensure_trainable(self, overwrite: bool) -> None:
        """Refuse to train into a directory that already holds a finished run."""
        if self.is_finished() and not overwrite:
            raise RunDirError(
                f"{self.path} already holds a finished run",
                hint="choose another hydra.run.dir, or pass overwrite=true to replace it",
            )

    def ensure_readable(self) -> None:
        """Fail with what is missing when `eval`/`predict` are pointed at an unusable folder."""
        if not self.path.is_dir():
            raise RunDirError(f"run_dir={self.path}: no such directory", hint="pass the folder `ftcli train` printed")
        missing = [name for name in (CONFIG, LABELS) if not (self.path / name).exists()]
        if self.artifact() is None:
            missing.append("model/ or adapter/")
        if missing:
            raise RunDirError(
                f"run_dir={self.path} is not a finished ftcli run: missing {', '.join(missing)}",
                hint="point run_dir at a folder written by `ftcli train` that ran to the end",
            )

    def write_json(self, name: str, data: Any) -> None:
        write_text_atomic(self.path / name, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{self.path / name} could not be read: {exc}") from exc

    def append_log(self, record: dict[str, Any]) -> None:
        with self.log_file.open("a", encoding="utf-8") as handle:
            handle.write(jsonl_line(record) + "\n")

    def save_artifact(self, name: str, write: Callable[[Path], None]) -> Path:
        """Build folder `name` with `write(tmp_dir)`, then swap it in whole."""
        with staged_dir(self.path / name) as tmp:
            write(tmp)
        return self.path / name


RUN_CONTENTS = (CONFIG, LABELS, METRICS, TRAIN_LOG, ENVIRONMENT, *ARTIFACTS, "checkpoints", HYDRA_RECORD)


def ensure_outside(run_path: Path, target: Path, setting: str, example: str) -> None:
    """Refuse an output location that would replace the run being read, a part of it, or a folder
    holding it (`export overwrite=true` replaces its output folder whole)."""
    run_path, target = run_path.resolve(), target.expanduser().resolve()
    inside = run_path in target.parents and target.relative_to(run_path).parts[0] in RUN_CONTENTS
    if target == run_path or target in run_path.parents or inside:
        raise RunDirError(
            f"{setting}={target} would overwrite the run it reads ({run_path})",
            hint=f"choose a location outside the run's own files, e.g. {setting}={example}",
        )


def _umask() -> int:
    """The process's umask, which `open()` and `mkdir()` apply to what they create.

    Linux reports it in /proc/self/status; elsewhere it is read by setting and restoring it, which
    other threads could see for that instant.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_normal_modes(folder: Path) -> None:
    """Give `folder` and everything in it the modes a plain `mkdir()` and `open()` would, under the umask.

    `tempfile.mkdtemp` makes folders 0700, and files written to a temporary name and renamed into
    place keep `mkstemp`'s 0600 (safetensors writes its files that way), which would hide a run's
    weights from the other users of a shared machine whatever their umask allows.
    """
    mask = _umask()
    os.chmod(folder, 0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for names, mode in ((dirs, 0o777), (files, 0o666)):
            for name in names:
                path = os.path.join(root, name)
                if not os.path.islink(path):  # chmod would follow it out of the folder
                    os.chmod(path, mode & ~mask)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """A temporary folder beside `final` that replaces it only if the block succeeds, with the
    modes a plain `mkdir()` and `open()` would have given it and what the block wrote."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        give_normal_modes(tmp)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        try:
            tmp.rename(final)
        except BaseException:
            if old is not None:
                old.rename(final)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_config(run: RunDir, cfg: Any) -> None:
    """The resolved, validated training config, as YAML."""
    from omegaconf import OmegaConf

    from ftcli.config.schema import plain

    write_text_atomic(run.config_file, OmegaConf.to_yaml(OmegaConf.create(plain(cfg))))


def read_config(run: RunDir) -> Any:
    """The run's `TrainConfig`, re-validated against the current schema.

    Task and method are looked up by name in the registries, so a config read back from disk can
    only select code ftcli registered; nothing in it is imported or instantiated by path.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    from ftcli.config.schema import TrainConfig
    from ftcli.errors import ConfigError
    from ftcli.methods import METHODS
    from ftcli.tasks import TASKS

    try:
        raw = OmegaConf.to_container(OmegaConf.load(run.config_file))
        if not isinstance(raw, dict):
            raise TypeError(f"it holds a YAML {type(raw).__name__}, not a mapping of settings")
        for group in ("task", "method"):
            if not isinstance(raw.get(group), dict) or "name" not in raw[group]:
                raise KeyError(f"it has no {group}.name")
        schema = OmegaConf.structured(TrainConfig)
        schema.task = OmegaConf.structured(TASKS.get(raw["task"]["name"]).config_cls)
        schema.method = OmegaConf.structured(METHODS.get(raw["method"]["name"]).config_cls)
        return OmegaConf.to_object(OmegaConf.merge(schema, raw))
    except (OSError, KeyError, TypeError, YAMLError, ConfigError, OmegaConfBaseException) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise RunDirError(
            f"{run.config_file} is not a valid ftcli training config: {str(reason).splitlines()[0]}",
            hint=_version_hint(run),
        ) from exc


def _version_hint(run: RunDir) -> str:
    """What to do about a config that does not read back, naming the ftcli version that wrote it when known."""
    from ftcli import __version__

    try:
        written_by = json.loads((run.path / ENVIRONMENT).read_text(encoding="utf-8")).get("ftcli")
    except (OSError, ValueError, AttributeError):
        written_by = None
    if not written_by:
        return "it may come from an incompatible ftcli version; retrain, or fix the file"
    if written_by != __version__:
        return (
            f"the run was written by ftcli {written_by} and this is ftcli {__version__}: "
            f"read it with ftcli {written_by}, or retrain it with this version"
        )
    return (
        f"the run was written by this ftcli version ({__version__}), so the file was edited or damaged; "
        "fix it, or retrain"
    )



@dataclass
class DirState:
    """A run directory as it was before a `train` that may be refused.

    Hydra writes its record of the command (`.hydra/`) and opens the log before ftcli sees the
    config, and `train` writes `environment.json` before it reads the data. `leave_as_found`
    puts those back after a refusal, so a finished run keeps the record of the command that made
    it (`export` copies that command into the model card).
    """

    path: Path
    existed: bool
    files: dict[Path, bytes] = field(default_factory=dict)  # `_record_files`, with what they held
    had_record: bool = False  # whether .hydra/ was there
    stamp: set[tuple[str, int, int]] = field(default_factory=set)

    @classmethod
    def capture(cls, path: Path) -> DirState:
        state = cls(path, path.is_dir())
        if state.existed:
            state.files = {file: file.read_bytes() for file in _record_files(path)}
            state.had_record = (path / HYDRA_RECORD).is_dir()
            state.stamp = _folders_stamp(path)
        return state


def leave_as_found(path: Path, before: DirState | None, log_name: str) -> None:
    """Undo what a refused `train` wrote into `path` before it was refused.

    A directory that existed gets its `.hydra/` record, logs and `environment.json` back as they
    were, unless one of its folders changed (a checkpoint was written: the attempt trained, and is
    kept). A directory the attempt made is removed when it holds nothing but what is written
    before the checks: `.hydra/`, the log and `environment.json`.
    """
    if before is None or not before.existed:
        if path.is_dir() and {entry.name for entry in path.iterdir()} <= {HYDRA_RECORD, log_name, ENVIRONMENT}:
            shutil.rmtree(path, ignore_errors=True)
        return
    if _folders_stamp(path) != before.stamp:
        return
    for file in _record_files(path):
        if file not in before.files:
            file.unlink()
    for file, data in before.files.items():
        if not file.is_file() or file.read_bytes() != data:
            write_bytes_atomic(file, data)
    record = path / HYDRA_RECORD
    if not before.had_record and record.is_dir() and not any(record.iterdir()):
        record.rmdir()


def _record_files(path: Path) -> list[Path]:
    """The files a `train` may write before its checks: `.hydra/`, logs and `environment.json`.

    Only these are read, so a directory that holds large files of its own (`hydra.run.dir=.`)
    costs nothing to capture.
    """
    record = path / HYDRA_RECORD
    top = [f for f in path.iterdir() if f.name in (ENVIRONMENT, TRAIN_LOG) or f.suffix == ".log"]
    files = top + (list(record.iterdir()) if record.is_dir() else [])
    return [f for f in files if f.is_file() and not f.is_symlink()]


def _folders_stamp(path: Path) -> set[tuple[str, int, int]]:
    """Name, inode and modification time of every folder but `.hydra/` and of what it holds: a saved
    checkpoint or artefact changes it."""
    stamp = set()
    for folder in path.iterdir():
        if folder.is_dir() and not folder.is_symlink() and folder.name != HYDRA_RECORD:
            for entry in (folder, *folder.iterdir()):
                info = entry.stat()
                stamp.add((str(entry.relative_to(path)), info.st_ino, info.st_mtime_ns))
    return stamp
