"""A `train` refused before it trains leaves its run directory as it found it.

Hydra writes its record of the command (`.hydra/`) and opens the job's log before ftcli sees the
config, and `train` writes `environment.json` before it reads the data. The CLI captures the
directory before Hydra starts (`DirState.capture`) and, when the job is refused (a config, data,
model or run-directory error, or nothing to do), `undo_refused_train` puts it back: a finished
run keeps the record of the command that made it, which `export` copies into the model card.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ftcli.files import write_bytes_atomic
from ftcli.runs.directory import ENVIRONMENT, HYDRA_RECORD, TRAIN_LOG


def undo_refused_train(output_dir: Path, before: DirState | None, log_name: str) -> None:
    """Close the job's log file in `output_dir` (nothing more is written there), then `leave_as_found`."""
    folder = output_dir.resolve()
    for handler in list(logging.root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).resolve().parent == folder:
            handler.close()
            logging.root.removeHandler(handler)
    leave_as_found(folder, before if before is not None and before.path == folder else None, log_name)


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
