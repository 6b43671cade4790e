"""task=grpo through the CLI on the tiny Llama: train → eval → predict on the bundled sample."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import train

FAST = ["task=grpo", "model=tiny_llama", "task.max_new_tokens=6", "task.num_generations=2", "trainer.batch_size=4",
        "data.max_eval_samples=6", "trainer.eval_batch_size=8"]
LOGGED = {"reward", "reward_std", "reward/exact_answer", "reward/regex", "kl", "completion_length", "zero_spread"}


def read_json(path):
    return json.loads(path.read_text())


def test_grpo_trains_evaluates_and_predicts(tmp_path):
    run = train(tmp_path / "run", *FAST, "method=lora", "task.rewards=[{name:exact_answer},{name:regex,pattern:'.',weight:0.5}]")
    metrics = read_json(run / "metrics.json")
    validation = metrics["validation"]
    assert set(validation) == {"loss", "reward", "reward/exact_answer", "reward/regex", "mean_length"}
    assert validation["loss"] is None and metrics["train"]["steps"] == 4
    assert validation["reward"] == pytest.approx(validation["reward/exact_answer"] + 0.5 * validation["reward/regex"])
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r and "eval" not in r]
    assert len(steps) == 4 and all(LOGGED <= set(r) for r in steps)
    assert all(0 < r["completion_length"] <= 6 and 0 <= r["zero_spread"] <= 1 for r in steps)
    assert records[-1]["eval"] == validation

    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == validation

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in [
        {"prompt": "What is 2 plus 3?", "answer": "#### 5", "id": 1},
        {"prompt": "What is 4 times 2?", "id": 2},
    ]))
    out = tmp_path / "out.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    assert first["id"] == 1 and isinstance(first["generated"], str) and isinstance(first["reward"], float)
    assert second["id"] == 2 and "reward" not in second  # no reference answer: nothing to score

