"""The commands: each a `run(cfg, output_dir)` function, imported only when it is invoked."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# name -> (module, schema class name, one-line summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("ftcli.commands.train", "TrainConfig", "fine-tune a model; writes a run directory"),
    "eval": (
        "ftcli.commands.evaluation", "EvalConfig",
        "re-evaluate a run directory, on its data or new files; `eval task=prompting`: zero/few-shot, no training",
    ),
    "predict": ("ftcli.commands.predict", "PredictConfig", "label new inputs with a run directory (jsonl out)"),
    "export": ("ftcli.commands.export", "ExportConfig", "write a run as a plain transformers folder or a PEFT adapter"),
}


# (command, override) -> (config name, module, schema class name): a command line that holds the
# override runs a different config and module under the same command.
VARIANTS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("eval", "task=prompting"): ("eval_prompting", "ftcli.commands.prompting", "PromptingEvalConfig"),
}


@dataclass(frozen=True)
class Job:
    """What a command line runs: its Hydra config (`configs/<config_name>.yaml`), module and schema."""

    config_name: str
    module: str
    schema: str
    usage: str  # the words that pick it: "train", "eval task=prompting"

    @property
    def runner(self) -> Callable[[Any, Any], Any]:
        return importlib.import_module(self.module).run


def job_for(command: str, overrides: list[str]) -> Job:
    """`ftcli eval task=prompting ...` scores a model without a run directory; every other line is the command itself."""
    for (name, override), (config_name, module, schema) in VARIANTS.items():
        if name == command and override in overrides:
            return Job(config_name, module, schema, f"{command} {override}")
    module, schema, _ = COMMANDS[command]
    return Job(command, module, schema, command)
