"""task=grpo scored by a finished reward-model run: `reward_model` loads the run once and reads the
`reward` its predictions hold for (prompt, response) rows. The reward model here is a stand-in
registered by the test: a pair regressor whose predictions name their score `reward`, as
task=reward_model's do."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from ftcli.cli.main import main
from ftcli.engine.frozen import NO_FROZEN_MODELS
from ftcli.tasks import TASKS
from ftcli.tasks.classification import (
    SCORE,
    ClassificationTask,
    PairClassificationConfig,
    Problem,
    SequenceClassification,
)
from tests.integration.conftest import SMOKE


@dataclass
class StandInConfig(PairClassificationConfig):
    name: str = "test_reward_stand_in"
    problem: Problem = Problem.regression


class StandInTask(ClassificationTask):
    def prediction_fields(self):
        return ("reward",)

    def predictions(self, outputs, features):
        return [{"reward": p[SCORE]} for p in super().predictions(outputs, features)]


class StandIn(SequenceClassification):
    def bind(self, cfg, data, labels, tokenizer, frozen=NO_FROZEN_MODELS):
        return StandInTask(self, cfg, data, labels, tokenizer, frozen=frozen, pairs=True)


if "test_reward_stand_in" not in TASKS:
    TASKS.register("test_reward_stand_in", StandInConfig)(StandIn())
    ConfigStore.instance().store(group="task", name="test_reward_stand_in", node=StandInConfig)


def test_grpo_learns_from_a_reward_model_run(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"what is {i} plus {i}?", "response": f"#### {2 * i}" if i % 2 else "no",
                                         "label": float(i % 2)}) + "\n" for i in range(24)))
    scorer = tmp_path / "rm"
    assert main(["train", *SMOKE, "task=test_reward_stand_in", f"data.train_file={pairs}", "data.text_column=prompt",
                 "data.text_pair_column=response", "method=full", f"hydra.run.dir={scorer}"]) == 0

    run = tmp_path / "grpo"
    rewards = f"task.rewards=[{{name:reward_model,run_dir:{scorer}}},{{name:exact_answer,weight:0.1}}]"
    assert main(["train", "task=grpo", "model=tiny_llama", "debug=smoke", "task.max_new_tokens=4", "trainer.batch_size=2",
                 "trainer.max_steps=2", "data.max_eval_samples=4", rewards, f"hydra.run.dir={run}"]) == 0
    validation = json.loads((run / "metrics.json").read_text())["validation"]
    assert {"reward/reward_model", "reward/exact_answer"} <= set(validation)
    assert validation["reward/reward_model"] != 0.0  # a regressor's score, not a default
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert all("reward/reward_model" in r for r in records if "eval" not in r)
    assert str(scorer) in (run / "config.yaml").read_text()  # saved as the absolute path eval reloads it from

    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["validation"] == validation


def test_a_run_that_predicts_no_reward_is_refused(tmp_path, trained_runs, capsys):
    rewards = f"task.rewards=[{{name:reward_model,run_dir:{trained_runs['full']}}}]"
    code = main(["train", "task=grpo", "model=tiny_llama", "debug=smoke", "task.max_new_tokens=2", "trainer.batch_size=2",
                 rewards, f"hydra.run.dir={tmp_path / 'grpo'}"])
    assert code == 5
    assert "is a task=sentiment run, whose predictions hold no 'reward'" in " ".join(capsys.readouterr().err.split())
