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
    rewrites.json      with data.augment.rewrite_runs: the rewritten training texts, kept for a resumed run
    error.json         a job of a `-m` sweep that failed: {"title", "message", "hint", "exit_code"}
    plots/             PNG figures of the run: loss and lr, each metric by step, per-class figures
    .hydra/            Hydra's record of the composed config and the overrides

Files are written to a temporary name and renamed, and artefact folders are built beside their
final name and swapped in, so a killed run never leaves a half-written file or folder; both get
the modes the user's umask gives a plain `open()` or `mkdir()`, not the temporary files' 0600.
A `train` refused before it trains puts back what Hydra and it wrote first (`ftcli.runs.refusal`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftcli.data.jsonl import jsonl_line
from ftcli.errors import RunDirError
from ftcli.files import staged_dir, write_text_atomic

CONFIG = "config.yaml"
LABELS = "labels.json"
METRICS = "metrics.json"
TRAIN_LOG = "train_log.jsonl"
ENVIRONMENT = "environment.json"
REWRITES = "rewrites.json"
ERROR = "error.json"  # a failed job of a sweep: why it failed (`title`, `message`, `hint`, `exit_code`)
PLOTS = "plots"
DATA_MIX = "data_mix.json"  # a data.mix run: each source, its weight, rows available and rows drawn
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

    def identity(self) -> str:
        """A digest of the run's config and final metrics: what a finished run writes changes with
        them, and the same folder trained again reads as another run."""
        digest = hashlib.sha256(self.config_file.read_bytes())
        digest.update(self.metrics_file.read_bytes())
        return digest.hexdigest()

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


RUN_CONTENTS = (CONFIG, LABELS, METRICS, TRAIN_LOG, ENVIRONMENT, REWRITES, *ARTIFACTS, "checkpoints", HYDRA_RECORD,
                DATA_MIX, ERROR, PLOTS)


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


def finished_run(setting: str, path: str) -> tuple[RunDir, Any]:
    """The finished run that `setting` names, and its `TrainConfig`, read without loading its model.

    Raises:
        RunDirError: `path` is not the folder of a run `ftcli train` finished.
    """
    run = RunDir(Path(path).expanduser().resolve())
    if not (run.path.is_dir() and run.config_file.is_file() and run.is_finished()):
        raise RunDirError(
            f"{setting}={path} is not a finished ftcli run (it needs config.yaml, metrics.json and model/ "
            "or adapter/)",
            hint=f"point {setting} at a folder written by `ftcli train` that ran to the end",
        )
    return run, read_config(run)


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
