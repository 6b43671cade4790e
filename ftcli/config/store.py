"""Registers the top-level schemas with Hydra's ConfigStore.

Each command's schema is stored here as `base_<command>`. `ftcli.cli.registered` stores the rest:
`ScoreConfig` as `base_eval_<scorer>` for each `ftcli eval task=<scorer>`, and the task, scorer
and method schemas, all of which come from registries that this layer does not import.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from ftcli.config.schema import EvalConfig, ExportConfig, IlfConfig, PredictConfig, TrainConfig


def register_base_schemas(store: ConfigStore) -> None:
    """Store the schemas of `train`, `eval`, `predict`, `export` and `ilf` (`base_<command>`)."""
    store.store(name="base_train", node=TrainConfig)
    store.store(name="base_eval", node=EvalConfig)
    store.store(name="base_predict", node=PredictConfig)
    store.store(name="base_export", node=ExportConfig)
    store.store(name="base_ilf", node=IlfConfig)
