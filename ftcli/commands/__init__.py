"""The commands: each a `run(cfg, output_dir)` function, imported only when it is invoked."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# name -> (module, schema class name, one-line summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("ftcli.commands.train", "TrainConfig", "fine-tune a model; writes a run directory"),
    "eval": ("ftcli.commands.evaluation", "EvalConfig", "re-evaluate a run directory, on its data or new files"),
    "predict": ("ftcli.commands.predict", "PredictConfig", "label new inputs with a run directory (jsonl out)"),
    "export": ("ftcli.commands.export", "ExportConfig", "write a run as a plain transformers folder or a PEFT adapter"),
}


def command_runner(name: str) -> Callable[[Any, Any], Any]:
    return importlib.import_module(COMMANDS[name][0]).run
