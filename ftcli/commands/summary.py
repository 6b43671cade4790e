"""What a command prints before it starts: the few settings a person checks, not the whole config.

The model, task and method, where the data comes from, and the settings given on the command
line, with the values the command resolved for them (`trainer.lr=1e-4` shows as
`trainer.lr=0.0001`, a relative data path as the absolute one). The whole config is in
`--cfg job` and in a run's config.yaml.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ftcli.config.schema import DataConfig, TrainConfig, plain

SOURCES = ("dataset", "dataset_config", "train_file", "validation_file", "test_file")
SHOWN = ("model", "model.name_or_path", "task", "method", "data", *(f"data.{key}" for key in SOURCES))


def run_rows(cfg: TrainConfig) -> dict[str, str]:
    """Model, task and method of a training config: what `train` starts, or the run `eval` reads."""
    return {"model": cfg.model.name_or_path, "task": cfg.task.name, "method": cfg.method.name}


def data_source(data: DataConfig, sample: str, use_sample: bool = True) -> str:
    """Where the rows come from: a hub dataset, the files named, or the task's bundled sample
    (for the splits no file names, as `ftcli.data.splits.load_splits` reads them)."""
    streamed = " (streamed)" if data.streaming else ""
    if data.mix:
        rest = [f"{split} {path}" for split in ("validation", "test") if (path := getattr(data, f"{split}_file"))]
        mix = " + ".join(f"{source.name()} x{source.weight:g}" for source in data.mix)
        return ", ".join([f"mix {mix}{streamed}", *rest])
    if data.dataset:
        config = f" ({data.dataset_config})" if data.dataset_config else ""
        return f"{data.dataset}{config} from the hub{streamed}"
    files = {split: getattr(data, f"{split}_file") for split in ("train", "validation", "test")}
    if data.streaming and data.train_file:
        files["train"] = f"{data.train_file}{streamed}"
    named = [f"{split} {path}" for split, path in files.items() if path]
    if data.train_file is None and use_sample:
        return ", ".join([f"the bundled {sample} sample", *named]) if named else f"the bundled {sample} sample"
    return ", ".join(named) or "none"


def overrides_row(cfg: Any, shown: Collection[str] = SHOWN) -> dict[str, str]:
    """`{"overrides": "k=v ..."}` for the settings given on the command line, or nothing when none were."""
    given = given_overrides(plain(cfg), shown)
    return {"overrides": " ".join(given)} if given else {}


def given_overrides(config: dict[str, Any], shown: Collection[str] = ()) -> list[str]:
    """The job's command-line overrides, each `key=<value as resolved in config>`.

    Group choices (`debug=smoke`) and keys the config does not hold (`~key`) stay as typed; keys
    in `shown`, which the summary prints on rows of their own, and Hydra's own are left out. Read
    from Hydra's record of the job, so a sweep's job shows its own values; empty outside a job.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    groups = set(hydra.runtime.choices)
    given = []
    for override in hydra.overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in shown or key.startswith("hydra."):
            continue
        found, value = _lookup(config, key)
        given.append(f"{key}={_flow(value)}" if found and key not in groups and "=" in override else override)
    return given


def _lookup(config: dict[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _flow(value: Any) -> str:
    """A value as an override writes it: `null`, `true`, `[a, b]`, `{k: v}`; text quoted only when
    it would not read back as itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain_text = text and text == text.strip() and not any(c in text for c in " ,[]{}=:'\"\n\\")
    return text if plain_text or not isinstance(value, str) else repr(text)
