"""The commands: each a `run(cfg, output_dir)` function, imported only when it is invoked."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# name -> (module, schema class name); what each one does is `ftcli.cli.help.SUMMARIES`
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ftcli.commands.train", "TrainConfig"),
    "eval": ("ftcli.commands.evaluation", "EvalConfig"),
    "predict": ("ftcli.commands.predict", "PredictConfig"),
    "export": ("ftcli.commands.export", "ExportConfig"),
    "ilf": ("ftcli.commands.ilf", "IlfConfig"),
}


SCORE_MODULE, SCORE_SCHEMA = "ftcli.commands.score", "ScoreConfig"  # `eval task=<scorer>`


@dataclass(frozen=True)
class Job:
    """What a command line runs: its Hydra config (`configs/<config_name>.yaml`), module and schema."""

    config_name: str
    module: str
    schema: str
    usage: str  # the words that pick it: "train", "eval task=<scorer>"

    @property
    def runner(self) -> Callable[[Any, Any], Any]:
        return importlib.import_module(self.module).run


def job_for(command: str, overrides: list[str]) -> Job:
    """The job a command line runs: the command itself, except that `ftcli eval task=<scorer> ...` scores a
    pretrained model without a run directory, with the scorer's own config (`configs/eval_<scorer>.yaml`)."""
    scorer = scorer_named(overrides) if command == "eval" else None
    if scorer is not None:
        return Job(f"{command}_{scorer}", SCORE_MODULE, SCORE_SCHEMA, f"{command} task={scorer}")
    module, schema = COMMANDS[command]
    return Job(command, module, schema, command)


def scorer_named(overrides: list[str]) -> str | None:
    """The registered scorer an override `task=<name>` picks, if any.

    The task registry is imported only for a command line that picks a task, so `eval run_dir=...`
    and `--help` stay quick.
    """
    named = [word.partition("=")[2] for word in overrides if word.startswith("task=")]
    if not named:
        return None
    from ftcli.tasks.scorers import SCORERS

    return next((name for name in named if name in SCORERS), None)
