"""Training checkpoints in `<run dir>/checkpoints/step-<N>/`, for resuming an interrupted run.

A checkpoint holds everything the loop needs to carry on as if it had never stopped:

    trainable.safetensors   the trainable weights (all of them for full fine-tuning)
    best.safetensors        the best evaluation's trainable weights, when there was one
    ema.safetensors         the moving average of the trainable weights, with `trainer.ema`
    optimizer.pt            optimiser and scheduler state dicts (tensors and numbers only)
    rng.pt                  torch's CPU (and CUDA) random states, of each process
    state.json              the loop state (`ftcli.engine.state.LoopState`: step, epoch, batches
                            consumed in the epoch, running loss, the best evaluation, the history)
                            and the run's config

Frozen weights are not stored: a resumed run rebuilds the model exactly as the first attempt did
(same config, same seed) and loads the trainable ones on top. Each checkpoint is written into a
temporary folder and renamed, so a folder named `step-<N>` is always complete; the `.pt` files
are read back with `torch.load(weights_only=True)`, which unpickles no code.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import nn

from ftcli.engine import processes
from ftcli.engine.state import LoopState
from ftcli.errors import Interrupted, RunDirError, first_line
from ftcli.files import staged_dir

T = TypeVar("T")
CHECKPOINTS = "checkpoints"
STEP_DIR = re.compile(r"step-(\d+)")
BEST, EMA = "best.safetensors", "ema.safetensors"


@dataclass
class Checkpoint:
    """A checkpoint folder: the loop state it holds (tensors are loaded by `restore`) and the run's config."""

    path: Path
    state: LoopState
    config: dict[str, Any] = field(default_factory=dict)  # the settings of the run that wrote it

    @property
    def step(self) -> int:
        return self.state.step


def checkpoints_dir(run_path: Path) -> Path:
    return run_path / CHECKPOINTS


def list_checkpoints(run_path: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first (temporary folders of an interrupted save are not listed)."""
    folder = checkpoints_dir(run_path)
    found = [p for p in folder.iterdir() if p.is_dir() and STEP_DIR.fullmatch(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(cast("re.Match[str]", STEP_DIR.fullmatch(p.name)).group(1)))


@dataclass
class Checkpointing:
    """Where and how often the loop saves checkpoints, and the one to resume from."""

    run_path: Path
    every: int | None  # steps between checkpoints; None: none
    keep: int  # newest checkpoints kept
    config: dict[str, Any]  # the run's config, recorded so a resume can check it is the same run
    resume: Checkpoint | None = None
    last: Path | None = None  # the newest complete checkpoint

    def __post_init__(self) -> None:
        if self.resume is not None:
            self.last = self.resume.path

    def due(self, step: int, total_steps: int) -> bool:
        every = self.every or 0
        return bool(every) and step % every == 0 and step < total_steps

    def save(self, accelerator: Any, model: nn.Module, optimizer: Any, scheduler: Any, state: LoopState) -> None:
        """Write `state` and the tensors from the main process; the others wait until it is complete.

        Each process's random state is kept (their dropout draws differ), so each resumes its own.
        """
        rng = processes.gather(_rng_state())
        if accelerator.is_main_process:
            save_checkpoint(self.run_path, model, optimizer, scheduler, state, self.config, self.keep, rng)
        accelerator.wait_for_everyone()
        self.last = checkpoints_dir(self.run_path) / f"step-{state.step}"

    def interrupted(self, signal_name: str, step: int, total_steps: int) -> Interrupted:
        """The error that ends a run stopped by a signal, once its checkpoint is saved."""
        return Interrupted(
            f"{signal_name} at step {step} of {total_steps}: checkpoint saved in {self.last}",
            hint="run the same command again with trainer.resume=auto",
        )


def save_checkpoint(
    run_path: Path, model: nn.Module, optimizer: Any, scheduler: Any, state: LoopState, config: dict[str, Any],
    keep: int, rng: list[dict[str, Any]] | None = None,
) -> Path:
    """Write `step-<N>` whole, then drop all but the newest `keep` checkpoints; `rng` holds the
    random state of each process of a distributed run (this process's alone by default)."""
    from safetensors.torch import save_file

    final = checkpoints_dir(run_path) / f"step-{state.step}"
    with staged_dir(final) as tmp:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
        for file, tensors in ((BEST, state.best_weights), (EMA, state.ema_weights)):
            if tensors is not None:
                save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp / file))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
        ranks = rng or [_rng_state()]
        torch.save({**ranks[0], "ranks": ranks}, tmp / "rng.pt")
        record = {**state.to_json(), "config": config}
        (tmp / "state.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for old in list_checkpoints(run_path)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(path: Path) -> Checkpoint:
    """The loop state of a checkpoint folder; its tensors are loaded later by `restore`."""
    try:
        raw = json.loads((path / "state.json").read_text(encoding="utf-8"))
        config = raw.pop("config", {})
        return Checkpoint(path, LoopState.from_json(raw), config)
    except (OSError, ValueError, TypeError) as exc:
        raise RunDirError(
            f"{path} is not a complete ftcli checkpoint: {exc}",
            hint="point trainer.resume at a checkpoints/step-<N> folder, or use trainer.resume=auto",
        ) from exc


def restore(checkpoint: Checkpoint, model: nn.Module, optimizer: Any, scheduler: Any) -> LoopState:
    """Load weights, optimiser and scheduler state; return the loop state, best weights included.

    The random state comes last (`restore_rng`), once the data loader has started.
    """
    from safetensors.torch import load_file

    saved = _load(checkpoint, "trainable.safetensors", lambda file: load_file(str(file)))
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(saved) != expected:
        raise RunDirError(
            f"{checkpoint.path} does not fit this model: it holds {len(saved)} trainable tensors, "
            f"the model trains {len(expected)}",
            hint="resume with the same config the run started with",
        )
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)

    def load_states(file: Path) -> None:
        states = torch.load(file, weights_only=True)
        optimizer.load_state_dict(states["optimizer"])
        scheduler.load_state_dict(states["scheduler"])

    _load(checkpoint, "optimizer.pt", load_states)
    state = replace(checkpoint.state, history=list(checkpoint.state.history))
    state.best_weights, state.ema_weights = (
        _load(checkpoint, file, lambda path: load_file(str(path))) if (checkpoint.path / file).exists() else None
        for file in (BEST, EMA)
    )
    return state


def restore_rng(checkpoint: Checkpoint) -> None:
    states = _load(checkpoint, "rng.pt", lambda file: torch.load(file, weights_only=True))
    ranks = states.get("ranks", [])
    if len(ranks) == processes.world():  # each process its own; else (another process count) the main one's
        states = ranks[processes.rank()]
    torch.set_rng_state(states["cpu"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _load(checkpoint: Checkpoint, name: str, load: Callable[[Path], T]) -> T:
    """`load(<checkpoint>/<name>)`, with a missing or damaged file reported as an incomplete checkpoint."""
    try:
        return load(checkpoint.path / name)
    except Exception as exc:  # safetensors, torch and pickle raise many unrelated types for a bad file
        if isinstance(exc, pickle.UnpicklingError):  # refused by weights_only=True before anything ran
            reason = "it holds Python objects besides tensors, which ftcli does not unpickle"
        else:
            reason = first_line(exc)
        raise RunDirError(
            f"{checkpoint.path} is not a complete ftcli checkpoint: {name} could not be read ({reason})",
            hint=f"resume from an older one with trainer.resume={checkpoint.path.parent}/step-<N>, "
            "or start over with overwrite=true",
        ) from exc


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _rng_state() -> dict[str, Any]:
    return {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def resume_point(run_path: Path, setting: str, config: dict[str, Any]) -> Checkpoint | None:
    """The checkpoint `trainer.resume=<setting>` names, checked against this run's `config`.

    `auto` takes the newest checkpoint in the run directory, or none (a fresh start) when there
    is none yet, so a script can always pass it. A checkpoint of a different config is refused:
    resuming it would silently train a mixture of two runs.
    """
    from ftcli.errors import ConfigError

    if setting == "auto":
        found = list_checkpoints(run_path)
        if not found:
            return None
        checkpoint = read_checkpoint(found[-1])
    else:
        path = Path(setting).expanduser()
        if not (path / "state.json").is_file():
            raise RunDirError(
                f"trainer.resume={setting}: no checkpoint there",
                hint=f"name a {CHECKPOINTS}/step-<N> folder, or use trainer.resume=auto",
            )
        checkpoint = read_checkpoint(path)
    changed = sorted(_differences(checkpoint.config, config))
    if changed:
        raise ConfigError(
            f"trainer.resume: {checkpoint.path} was written by a run with other settings: {', '.join(changed)}",
            hint="resume with the command line that started the run (only trainer.resume may differ)",
        )
    return checkpoint


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = set(saved) | set(current)
        return [d for k in keys for d in _differences(saved.get(k), current.get(k), f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if saved != current else []
