"""The pure parts of `scripts/bench_trl.py`: its arguments, token counting, prompt text and tables.

Nothing here needs TRL, torch or the shared data; the figures themselves come from real runs
(docs/performance.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_trl.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_trl", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_and_ftcli_overrides_after_the_separator(bench):
    args = bench.parse_args(["--parts", "dpo", "--steps", "3", "--", "trainer.group_by_length=false"])
    assert args.parts == ["dpo"] and args.steps == 3 and args.repeats == 3
    assert args.overrides == ["trainer.group_by_length=false"]
    assert args.data.name == "validation.jsonl" and args.data.parent.name == "orca_dpo_pairs_sample"
    assert bench.parse_args([]).parts == ["dpo", "reward"]


@pytest.mark.parametrize("argv", [["--parts", "sft"], ["--parts", ","], ["--steps", "0"], ["--repeats", "0"],
                                  ["--max-pairs", "2", "--batch-size", "4"]])
def test_bad_arguments_are_refused(bench, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2


def test_real_tokens_count_every_attention_mask_and_leave_out_padding(bench):
    chosen = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    rejected = np.array([[1, 1, 1, 1], [1, 0, 0, 0]])
    ftcli_reward = {"input_ids": chosen * 7, "attention_mask": chosen, "rejected_input_ids": rejected * 7,
                    "rejected_attention_mask": rejected}
    trl = {"input_ids": np.vstack([chosen, rejected]) * 7, "attention_mask": np.vstack([chosen, rejected]),
           "completion_mask": np.vstack([chosen, rejected])}  # the completion mask is not counted again
    assert bench.real_tokens(ftcli_reward) == bench.real_tokens(trl) == (10, 16)
    assert bench.real_tokens({"input_ids": chosen}) == (0, 0)


def test_the_prompt_is_the_text_of_ftclis_plain_template(bench):
    from ftcli.tasks.chat import PLAIN_HEADERS, TURN_SEPARATOR

    written = bench.plain_prompt("What is 2 + 2?", "Be brief.")
    assert written == (f"{PLAIN_HEADERS['system']}Be brief.{TURN_SEPARATOR}{PLAIN_HEADERS['user']}What is 2 + 2?"
                       f"{TURN_SEPARATOR}{PLAIN_HEADERS['assistant']}")
    assert bench.plain_prompt("Hi", None) == bench.plain_prompt("Hi", "") == "### Instruction:\nHi\n\n### Response:\n"


def test_repeats_alternate_which_side_goes_first(bench):
    assert [bench.order(r) for r in range(3)] == [("trl", "ftcli"), ("ftcli", "trl"), ("trl", "ftcli")]


def run(tokens, seconds, peak, before=500.0, padded=None, steps=4):
    return {"tokens": tokens, "padded": padded or tokens * 2, "seconds": seconds, "cpu_seconds": 2 * seconds,
            "steps": steps, "peak_rss_mb": peak, "rss_before_mb": before}


def test_the_table_gives_medians_spreads_and_ratios(bench):
    results = {
        "trl": [run(1000, 10.0, 3000), run(1000, 12.5, 3200), run(1000, 8.0, 2800)],  # 100, 80, 125 tokens/s
        "ftcli": [run(1000, 5.0, 1500), run(1000, 4.0, 1600), run(1000, 5.0, 1400)],  # 200, 250, 200 tokens/s
    }
    lines = bench.table("dpo", results)
    trl_row, ftcli_row, ratio = lines[2], lines[3], lines[4]
    assert trl_row == "| TRL (DPOTrainer + LoRA) | 100 | 80–125 (±22%) | 10.0 | 20.0 | 50 | 50.0% | 500 | 3,000 | 2,800–3,200 |"
    assert ftcli_row == "| ftcli | 200 | 200–250 (±12%) | 5.0 | 10.0 | 100 | 50.0% | 500 | 1,500 | 1,400–1,600 |"
    assert ratio == "| ratio ftcli / TRL | **2.00x** | | 0.50x | 0.50x | **2.00x** | | 1.00x | **0.50x** | |"
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_a_table_with_one_side_has_no_ratio(bench):
    lines = bench.table("reward", {"trl": [], "ftcli": [run(100, 1.0, 900)]})
    assert len(lines) == 3 and lines[2].startswith("| ftcli | 100 | 100–100 (±0%) | 1.0 |")


SPEC = {"model": "tiny:llama", "train": "train.jsonl", "dev": "dev.jsonl", "steps": 4, "batch_size": 4,
        "lr": 5e-5, "max_length": 256, "seed": 42, "gradient_checkpointing": False, "run": "run", "overrides": []}


def composed(bench, part, config_dir, **spec):
    from hydra import compose, initialize_config_dir

    from ftcli.cli.registered import to_typed
    from ftcli.config.schema import TrainConfig

    overrides = [o for o in bench.ftcli_overrides(part, {**SPEC, **spec}) if not o.startswith("hydra.")]
    with initialize_config_dir(str(config_dir), version_base="1.3", job_name="test"):
        return to_typed(compose(config_name="train", overrides=overrides), TrainConfig)


def test_the_dpo_side_is_configured_as_the_trl_side(bench, config_dir, registered_configs):
    cfg = composed(bench, "dpo", config_dir, overrides=["trainer.group_by_length=false"])
    assert (cfg.task.name, cfg.task.loss.value, cfg.task.strength, cfg.task.max_length) == ("preference", "dpo", 0.1, 256)
    assert cfg.task.disable_dropout and not cfg.task.precompute_reference and cfg.task.template.value == "plain"
    assert (cfg.method.name, cfg.method.rank, cfg.method.alpha, cfg.method.dropout) == ("lora", 8, 16, 0.1)
    assert cfg.method.target_modules == bench.LORA["targets"]
    trainer = cfg.trainer
    assert (trainer.max_steps, trainer.batch_size, trainer.lr, trainer.grad_accum_steps) == (4, 4, 5e-5, 1)
    assert (trainer.weight_decay, trainer.warmup_ratio, trainer.max_grad_norm) == (0.01, 0.06, 1.0)
    assert trainer.precision.value == "fp32" and trainer.eval_strategy.value == "no" and trainer.save_every is None
    assert trainer.fused_optimizer and not trainer.gradient_checkpointing and not trainer.group_by_length


def test_the_reward_side_is_a_full_reward_model_once_ftcli_has_one(bench, config_dir, registered_configs):
    if not (config_dir / "task" / "reward_model.yaml").is_file():
        pytest.skip("task=reward_model is not in this ftcli yet")
    cfg = composed(bench, "reward", config_dir, gradient_checkpointing=True)
    assert (cfg.task.name, cfg.task.input.value, cfg.task.max_length, cfg.method.name) == ("reward_model", "conversation",
                                                                                          256, "full")
    assert cfg.trainer.gradient_checkpointing and cfg.trainer.max_steps == 4
