"""Where a model comes from, and the one error every way of loading it fails with.

`model.name_or_path` is a hub id, a local folder, `package:<module>/<dir>` (weights inside an
installed Python package: the embedded MiniLM), `tiny:<arch>`, or the directory of a finished
`ftcli train` run that saved a whole model (a meta-training run, a full fine-tune). `resolve`
turns package references and run directories into folders; `loading` turns the many ways
`from_pretrained` fails into a `ModelError` that names the id and says what to do (offline: how
to fetch it once, or which model needs no network).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ftcli.config.schema import EMBEDDED_MODEL, ModelConfig
from ftcli.errors import ModelError, first_line

if TYPE_CHECKING:
    from typing import TypeAlias

    from transformers.models.auto.auto_factory import _BaseAutoModelClass

    ModelClass: TypeAlias = type[_BaseAutoModelClass]
    """A `transformers` Auto model class (`AutoModelForSequenceClassification`, ...): it builds the
    model of a config's architecture with the class's head."""

PACKAGE_PREFIX = "package:"
TINY_PREFIX = "tiny:"
# The layout of a run directory, which `ftcli.runs.directory` (a layer above) writes: a folder holding
# any of RUN_MARKS is one; its weights are in `model/` (a whole model) or `adapter/`, and it is finished
# once `metrics.json` is written, last.
RUN_MARKS = ("config.yaml", "metrics.json", "train_log.jsonl", ".hydra")
RUN_MODEL, RUN_ADAPTER, RUN_METRICS = "model", "adapter", "metrics.json"


def embedded_tokenizer_path() -> str:
    return resolve(EMBEDDED_MODEL)


def resolve(name_or_path: str) -> str:
    """A loadable path or hub id for `name_or_path` (package references become folders)."""
    if name_or_path.startswith(PACKAGE_PREFIX):
        module, _, sub = name_or_path[len(PACKAGE_PREFIX):].partition("/")
        try:
            folder = Path(str(resources.files(module))) / sub
        except ModuleNotFoundError as exc:
            raise ModelError(
                f"model.name_or_path={name_or_path!r}: the Python package {module!r} is not installed",
                hint=f"pip install {module.replace('_', '-')}",
            ) from exc
        if not folder.is_dir():
            raise ModelError(f"model.name_or_path={name_or_path!r}: {folder} does not exist in that package")
        return str(folder)
    folder = Path(name_or_path).expanduser()
    if is_run_dir(folder):
        return str(run_model(folder))
    return name_or_path


def is_run_dir(folder: Path) -> bool:
    """Whether `folder` is an ftcli run directory rather than a model folder (which holds config.json)."""
    return folder.is_dir() and not (folder / "config.json").exists() and any((folder / m).exists() for m in RUN_MARKS)


def run_model(folder: Path) -> Path:
    """The model folder of the finished run in `folder`, with its tokenizer.

    Raises:
        ModelError: for a run that saved an adapter (its base model is elsewhere), or one that has not finished.
    """
    if (folder / RUN_ADAPTER).is_dir():
        raise ModelError(
            f"model.name_or_path={folder} is a run that saved an adapter ({RUN_ADAPTER}/), "
            "not a whole model to start from",
            hint=f"fold it into plain weights with `ftcli export run_dir={folder} merge=true` and point "
            "model.name_or_path at the exported folder, or start from a run that saved a whole model "
            "(method=full, or meta-training)",
        )
    if not (folder / RUN_METRICS).is_file() or not (folder / RUN_MODEL).is_dir():
        raise ModelError(
            f"model.name_or_path={folder} is a run directory without a finished run in it "
            f"(no {RUN_METRICS} or {RUN_MODEL}/ yet)",
            hint="let the run finish (a stopped one continues with its command and trainer.resume=auto), "
            "or point model.name_or_path at a finished run",
        )
    return folder / RUN_MODEL


@contextmanager
def loading(cfg: ModelConfig) -> Iterator[None]:
    """Turns the many ways `from_pretrained` fails into one ModelError that says what to do."""
    try:
        yield
    except (OSError, ValueError) as exc:
        raise load_error(cfg.name_or_path, exc) from exc


def load_error(name: str, exc: BaseException) -> ModelError:
    if Path(name).exists() or name.startswith(PACKAGE_PREFIX):
        return ModelError(f"model.name_or_path={name!r} could not be loaded: {first_line(exc)}")
    if name.startswith((".", "/", "~")):
        return ModelError(f"model.name_or_path={name!r}: no such folder", hint="check the path")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    where = "the Hub is unreachable (HF_HUB_OFFLINE is set)" if offline else "it could not be fetched from the Hub"
    return ModelError(
        f"model.name_or_path={name!r} is not a local folder, is not in the Hugging Face cache, and {where}: "
        f"{first_line(exc)}",
        hint=f"check the id; to use it offline, download it once with network access "
        f"(`hf download {name}`) or point model.name_or_path at a local folder; model=minilm needs no network",
    )
