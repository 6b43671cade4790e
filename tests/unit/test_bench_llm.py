"""The parts of `scripts/bench_llm.py` that need no TRL: arguments, the dry run, what each side is
given, the batch order and the table. The figures themselves come from real runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_llm.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_llm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_and_ftcli_overrides_after_the_separator(bench):
    args = bench.parse_args(["--methods", "lora", "--trl-modes", "packed", "--", "trainer.group_by_length=false"])
    assert args.methods == ["lora"] and args.trl_modes == ["packed"] and args.overrides == ["trainer.group_by_length=false"]
    defaults = bench.parse_args([])
    assert defaults.methods == ["lora", "full"] and defaults.trl_modes == ["padding-free", "packed"]
    assert (defaults.steps, defaults.batch_size, defaults.max_length) == (40, 8, 256)
    assert defaults.data.is_file()  # the shared Alpaca rows, else the bundled sample


@pytest.mark.parametrize("argv", [["--methods", "dpo"], ["--methods", ","], ["--trl-modes", "wrapped"],
                                  ["--steps", "1"], ["--batch-size", "0"], ["--repeats", "0"]])
def test_bad_arguments_are_refused(bench, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2


def test_the_dry_run_prints_both_sides_and_builds_nothing(bench, capsys, tmp_path):
    assert bench.main_bench(["--dry-run", "--steps", "3", "--batch-size", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rows: the first 6 of" in out and "## lora" in out and "## full" in out
    assert "ftcli train method=lora method.rank=16" in out and "ftcli train method=full task=instruction" in out
    assert out.count("TRL SFTConfig (padding-free)") == 2 and out.count("TRL SFTConfig (packed)") == 2
    assert not list(tmp_path.iterdir())


SPEC = {"model": "tiny:llama", "train": "train.jsonl", "dev": "dev.jsonl", "steps": 40, "batch_size": 8, "lr": 1e-3,
        "max_length": 256, "seed": 42, "gradient_checkpointing": False, "run": "run", "overrides": [],
        "packed_batch_size": 2}


def composed(bench, method, config_dir):
    from hydra import compose, initialize_config_dir

    from ftcli.cli.registered import to_typed
    from ftcli.config.schema import TrainConfig

    overrides = [o for o in bench.ftcli_overrides(method, SPEC) if not o.startswith("hydra.")]
    with initialize_config_dir(str(config_dir), version_base="1.3", job_name="test"):
        return to_typed(compose(config_name="train", overrides=overrides), TrainConfig)


def test_the_ftcli_side_is_configured_as_the_trl_side(bench, config_dir, registered_configs):
    cfg = composed(bench, "lora", config_dir)
    task, trainer = cfg.task, cfg.trainer
    assert (task.name, task.template.value, task.packing, task.max_length) == ("instruction", "plain", True, 256)
    assert not task.train_on_prompt and not task.generate_in_eval  # the loss on the responses only, like TRL's
    assert (cfg.method.name, cfg.method.rank, cfg.method.alpha, cfg.method.dropout) == ("lora", 16, 32, 0.0)
    assert cfg.method.target_modules == bench.TARGETS
    trl = bench.trl_config("padding-free", SPEC)
    assert (trainer.max_steps, trainer.batch_size, trainer.lr) == (trl["max_steps"], trl["per_device_train_batch_size"],
                                                                   trl["learning_rate"])
    assert round(trainer.warmup_ratio * trainer.max_steps) == trl["warmup_steps"]
    assert (trainer.weight_decay, trainer.max_grad_norm) == (trl["weight_decay"], trl["max_grad_norm"])
    assert trainer.precision.value == "fp32" and not trl["bf16"] and trainer.fused_optimizer
    assert trainer.eval_strategy.value == "no" and trainer.save_every is None and not trainer.gradient_checkpointing
    assert composed(bench, "full", config_dir).method.name == "full"


def test_trl_runs_padding_free_on_ftclis_batches_or_packed_best_fit(bench):
    free, packed = bench.trl_config("padding-free", SPEC), bench.trl_config("packed", SPEC)
    assert free["padding_free"] and free["train_sampling_strategy"] == "sequential" and free["max_length"] is None
    assert packed["packing"] and packed["packing_strategy"] == "bfd" and packed["max_length"] == 256
    assert packed["per_device_train_batch_size"] == 2 and free["completion_only_loss"] and packed["completion_only_loss"]
    assert bench.packed_batch_size([40, 60, 50, 50], 8, 256) == 2 and bench.packed_batch_size([10], 2, 256) == 1


def test_the_batch_order_is_ftclis_first_epoch(bench):
    from ftcli.engine.batching import TrainBatches

    lengths = [5, 9, 2, 7, 3, 8, 1, 4]
    order = bench.batch_order(lengths, 2, 7)
    assert sorted(order) == list(range(8))
    assert [order[i:i + 2] for i in range(0, 8, 2)] == list(TrainBatches(lengths, 2, 7))


def test_a_short_file_trains_several_epochs_of_whole_batches_in_ftclis_order(bench):
    from ftcli.engine.batching import TrainBatches

    train, dev = bench.training_rows(list(range(23)), steps=40, batch_size=4)
    assert train == list(range(16)) and dev == [16, 17, 18, 19]  # 19 rows left after the 4 scored: 4 whole batches
    assert bench.training_rows(list(range(200)), steps=5, batch_size=4) == (list(range(20)), [20, 21, 22, 23])
    assert bench.training_rows(list(range(7)), steps=5, batch_size=4) == ([], [])
    lengths = [5, 9, 2, 7]
    sampler = TrainBatches(lengths, 2, 3)
    sampler.set_epoch(1)
    assert bench.batch_order(lengths, 2, 3, epochs=2)[4:] == [i for batch in sampler for i in batch]


def run(tokens, seconds, peak, losses, checksums=(1, 2)):
    return {"tokens": tokens, "seconds": seconds, "cpu_seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": 500.0,
            "losses": losses,
            "steps": len(losses), "checksums": list(checksums), "own_tokens_per_second": tokens / seconds}


def test_the_table_gives_speeds_losses_and_ratios(bench):
    results = {"ftcli": [run(1000, 5.0, 800, [10.0, 8.0])], "padding-free": [run(1000, 10.0, 1000, [10.0, 8.0])],
               "packed": [run(2000, 10.0, 1600, [10.0, 7.0], checksums=(3, 4))]}
    lines = bench.table("lora", results, threads=1)
    assert lines[0].startswith("| lora, 1 thread | tokens/s |")
    assert lines[2] == "| ftcli (packing) | 200 | 200–200 | 5.0 | 200 | 500 | 800 | 10.0000 | 9.0000 | 1,000 | – |"
    assert lines[3].endswith("| 1,000 | yes |") and lines[4].endswith("| 2,000 | no |")
    assert lines[5] == ("| ratio ftcli / TRL SFTTrainer (padding-free) | **2.00x** | | 0.50x | **2.00x** | 1.00x "
                        "| **0.80x** | | +0.0000 | | |")
    assert lines[6].startswith("| ratio ftcli / TRL SFTTrainer (packed, bfd) | **1.00x** |")
    assert all(line.count("|") == lines[0].count("|") for line in lines[:7])
