"""The run directory: what `train` writes and `eval`, `predict` and `export` read back.

Layout (documented in the README):

    config.yaml        the resolved, validated training config
    labels.json        {"labels": [...]}: label names in id order
    metrics.json       {"<split>": {metric: value}}: final scores, one object per split
    train_log.jsonl    one JSON object per logged step and per evaluation
    environment.json   the versions of Python, ftcli (and its git commit) and its libraries
    model/             full and freeze: `save_pretrained` folder with the tokenizer
    adapter/           adapter methods: PEFT adapter folder (head included) with the tokenizer
    checkpoints/       while training: step-<N>/ folders to resume from (`ftcli.engine.checkpoint`)
    .hydra/            Hydra's record of the composed config and the overrides

Files are written to a temporary name and renamed, and artefact folders are built beside their
final name and swapped in, so a killed run never leaves a half-written file or folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftcli.errors import RunDirError

CONFIG = "config.yaml"
LABELS = "labels.json"
METRICS = "metrics.json"
TRAIN_LOG = "train_log.jsonl"
ENVIRONMENT = "environment.json"
ARTIFACTS = ("model", "adapter")


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
            handle.write(json.dumps(record) + "\n")

    def save_artifact(self, name: str, write: Callable[[Path], None]) -> Path:
        """Build folder `name` with `write(tmp_dir)`, then swap it in whole."""
        with staged_dir(self.path / name) as tmp:
            write(tmp)
        return self.path / name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """A temporary folder beside `final` that replaces it only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
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

    from ftcli.config.schema import TrainConfig
    from ftcli.errors import ConfigError
    from ftcli.methods import METHODS
    from ftcli.tasks import TASKS

    try:
        raw = OmegaConf.to_container(OmegaConf.load(run.config_file))
        schema = OmegaConf.structured(TrainConfig)
        schema.task = OmegaConf.structured(TASKS.get(raw["task"]["name"]).config_cls)
        schema.method = OmegaConf.structured(METHODS.get(raw["method"]["name"]).config_cls)
        return OmegaConf.to_object(OmegaConf.merge(schema, raw))
    except (OSError, KeyError, TypeError, ConfigError, OmegaConfBaseException) as exc:
        raise RunDirError(
            f"{run.config_file} is not a valid ftcli training config: {str(exc).splitlines()[0]}",
            hint="it may come from an incompatible ftcli version; retrain, or fix the file",
        ) from exc
