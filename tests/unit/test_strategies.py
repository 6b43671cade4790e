"""The distributed presets: what each composes to, the accelerate plugin it builds, and what is refused."""

from __future__ import annotations

import pytest

from ftcli.config.schema import DistributedConfig, Strategy, TrainerConfig
from ftcli.engine import processes, strategies
from ftcli.errors import ConfigError


@pytest.mark.parametrize(("preset", "strategy", "stage"), [("ddp", "ddp", 2), ("fsdp", "fsdp", 2),
                                                           ("deepspeed_zero2", "deepspeed", 2),
                                                           ("deepspeed_zero3", "deepspeed", 3)])
def test_each_preset_names_its_strategy(preset, strategy, stage):
    from hydra import compose, initialize_config_dir

    from ftcli.cli.main import config_dir
    from ftcli.cli.registered import register_configs, to_typed
    from ftcli.config.schema import TrainConfig

    register_configs()
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="test"):
        cfg = to_typed(compose("train", [f"trainer={preset}"]), TrainConfig)
    assert cfg.trainer.distributed.strategy is Strategy(strategy)
    assert cfg.trainer.distributed.zero_stage == stage


def test_one_process_and_ddp_need_no_plugin(monkeypatch):
    assert strategies.accelerator_plugins(DistributedConfig(strategy=Strategy.fsdp), 1.0) == {}  # one process
    monkeypatch.setattr(processes, "active", lambda: True)
    assert strategies.accelerator_plugins(DistributedConfig(), 1.0) == {}


def test_fsdp_builds_a_full_shard_fsdp2_plugin_wrapping_transformer_layers(monkeypatch):
    import torch

    monkeypatch.setattr(processes, "active", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    plugin = strategies.accelerator_plugins(DistributedConfig(strategy=Strategy.fsdp), 1.0)["fsdp_plugin"]
    if hasattr(plugin, "fsdp_version"):  # accelerate 1.6 and later
        assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    else:
        assert plugin.sharding_strategy.name == "FULL_SHARD"
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"


def test_the_sharding_strategies_are_refused_without_cuda():
    for strategy in (Strategy.fsdp, Strategy.deepspeed):
        with pytest.raises(ConfigError, match="CUDA GPUs; this machine has none") as caught:
            strategies.check_runnable(DistributedConfig(strategy=strategy))
        assert "trainer=ddp" in (caught.value.hint or "")
    strategies.check_runnable(DistributedConfig())  # ddp runs anywhere


def test_a_launch_on_a_machine_without_cuda_refuses_fsdp_before_any_model_loads(monkeypatch, tmp_path, capsys):
    from ftcli.cli.main import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "model=tiny_bert", "trainer=fsdp", f"hydra.run.dir={tmp_path / 'run'}"]) == 3
    assert "this machine has none" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "run").exists()


def test_what_the_sharding_strategies_cannot_combine_with_under_a_launch():
    deepspeed = DistributedConfig(strategy=Strategy.deepspeed)
    trainer = TrainerConfig(grad_accum_steps=2, ema=0.99, compile=True, distributed=deepspeed)
    assert not trainer.validate()  # one process ignores the strategy
    problems = " ".join(trainer.launch_problems())
    assert "grad_accum_steps>1 with DeepSpeed" in problems
    assert "trainer.ema with trainer.distributed.strategy=deepspeed" in problems
    assert "trainer.compile=true" in problems
    assert "checkpoints with DeepSpeed" in problems  # save_every defaults to 500
    assert not TrainerConfig(grad_accum_steps=2, ema=0.99, compile=True).launch_problems()  # all fine under ddp
    assert not TrainerConfig(save_every=None, distributed=deepspeed).launch_problems()  # trainer=deepspeed_zero2
    for sharded in (DistributedConfig(strategy=Strategy.fsdp), DistributedConfig(strategy=Strategy.deepspeed, zero_stage=3)):
        assert "does not yet gather them" in " ".join(TrainerConfig(save_every=None, distributed=sharded).launch_problems())
    assert "must be 2 or 3" in " ".join(DistributedConfig(zero_stage=1).validate())
    assert "offload_parameters needs" in " ".join(DistributedConfig(offload_parameters=True).validate())


def test_accelerate_launch_of_one_process_on_a_cpu_machine_says_how_to_start_several(monkeypatch, capsys):
    from ftcli.cli.main import main

    monkeypatch.setenv("ACCELERATE_USE_CPU", "False")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # what `accelerate launch --num_processes 2` sets, with no ranks
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["train", "model=tiny_bert", "--cfg", "job"]) == 0
    assert "accelerate launch --multi_gpu --num_processes N" in " ".join(capsys.readouterr().out.split())
