"""How the processes of a distributed run share the model: the `accelerate` plugin of each strategy.

`ddp` needs nothing beyond the process group: accelerate wraps the model in
DistributedDataParallel. `fsdp` and `deepspeed` shard state across the processes and run on CUDA
GPUs only (their collectives are NCCL's); their plugins are built here from
`trainer.distributed`, so the settings live in ftcli's config instead of an accelerate config file.
"""

from __future__ import annotations

from typing import Any

from ftcli.config.schema import DistributedConfig, Strategy
from ftcli.engine import processes
from ftcli.errors import ConfigError


def accelerator_plugins(cfg: DistributedConfig, max_grad_norm: float | None) -> dict[str, Any]:
    """The keyword arguments that give `Accelerator` this run's strategy; none for one process or DDP."""
    if not processes.active() or cfg.strategy is Strategy.ddp:
        return {}
    check_runnable(cfg)
    if cfg.strategy is Strategy.fsdp:
        return {"fsdp_plugin": _fsdp_plugin(cfg)}
    from accelerate import DeepSpeedPlugin

    return {"deepspeed_plugin": DeepSpeedPlugin(
        zero_stage=cfg.zero_stage, gradient_accumulation_steps=1, gradient_clipping=max_grad_norm,
        offload_optimizer_device="cpu" if cfg.cpu_offload else "none",
        offload_param_device="cpu" if cfg.offload_parameters else "none",
        zero3_save_16bit_model=cfg.zero_stage == 3,
    )}


def _fsdp_plugin(cfg: DistributedConfig) -> Any:
    """One FSDP unit per transformer layer (the model's `_no_split_modules`), full shard, a full state
    dict for saving: FSDP2 where the installed accelerate has it (1.6 and later), else FSDP1."""
    from dataclasses import fields

    from accelerate import FullyShardedDataParallelPlugin

    settings: dict[str, Any] = {"auto_wrap_policy": "transformer_based_wrap", "state_dict_type": "FULL_STATE_DICT",
                                "cpu_offload": cfg.cpu_offload}
    if "fsdp_version" in {f.name for f in fields(FullyShardedDataParallelPlugin)}:
        return FullyShardedDataParallelPlugin(fsdp_version=2, reshard_after_forward=True, **settings)
    return FullyShardedDataParallelPlugin(sharding_strategy="FULL_SHARD", **settings)


def check_runnable(cfg: DistributedConfig) -> None:
    """A ConfigError unless this machine can run `cfg.strategy`: CUDA for the sharding strategies,
    and the `deepspeed` package for DeepSpeed."""
    import torch

    if cfg.strategy is Strategy.ddp:
        return
    if not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.distributed.strategy={cfg.strategy.value} shards the model across CUDA GPUs; this machine has none",
            hint="use trainer=ddp (it runs on CPUs too, with the gloo backend), or run on GPUs",
        )
    if cfg.strategy is Strategy.deepspeed:
        try:
            import deepspeed  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "trainer.distributed.strategy=deepspeed needs the deepspeed package, which is not installed",
                hint="pip install 'ftcli[deepspeed]', or use trainer=fsdp or trainer=ddp",
            ) from exc
