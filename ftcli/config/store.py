"""Registers every schema with Hydra's ConfigStore.

Top-level schemas are stored as `base_<command>`; task and method schemas under
`schema/<group>/<name>`, taken from the registries, so each YAML in `configs/task` and
`configs/method` can name its schema in its defaults list (`/schema/method/lora@_here_`) and
the schema names never show up among a group's options.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from ftcli.config.schema import EvalConfig, ExportConfig, PredictConfig, PromptingEvalConfig, TrainConfig


def register_configs() -> None:
    from ftcli.methods import METHODS
    from ftcli.tasks import TASKS

    store = ConfigStore.instance()
    store.store(name="base_train", node=TrainConfig)
    store.store(name="base_eval", node=EvalConfig)
    store.store(name="base_eval_prompting", node=PromptingEvalConfig)
    store.store(name="base_predict", node=PredictConfig)
    store.store(name="base_export", node=ExportConfig)
    for entry in METHODS:
        store.store(group="schema/method", name=entry.name, node=entry.config_cls)
    for entry in TASKS:
        store.store(group="schema/task", name=entry.name, node=entry.config_cls)
