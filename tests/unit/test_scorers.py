"""Scorers (`prompting`) have a registry and a command path of their own, apart from trainable tasks."""

from __future__ import annotations

import pytest

from ftcli.commands import Job, job_for
from ftcli.errors import ConfigError
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig
from ftcli.tasks.prompting import PromptingConfig
from ftcli.tasks.scorers import SCORERS, scorer_of


def test_prompting_is_a_scorer_not_a_task():
    assert "prompting" in SCORERS and "prompting" not in TASKS
    assert SCORERS.get("prompting").config_cls is PromptingConfig
    assert scorer_of(PromptingConfig(name="renamed")).name == "prompting"  # found by its settings' schema
    with pytest.raises(ConfigError, match="belong to no registered scorer; choose one of: prompting"):
        scorer_of(ClassificationConfig(name="sentiment"))


@pytest.mark.parametrize(("command", "words", "job"), [
    ("eval", ["task=prompting", "model=gpt2"], Job("eval_prompting", "ftcli.commands.score", "ScoreConfig",
                                                    "eval task=prompting")),
    ("eval", ["run_dir=runs/a"], Job("eval", "ftcli.commands.evaluation", "EvalConfig", "eval")),
    ("eval", ["task=sentiment"], Job("eval", "ftcli.commands.evaluation", "EvalConfig", "eval")),
    ("eval", ["task.shots=2", "+task=prompting"], Job("eval", "ftcli.commands.evaluation", "EvalConfig", "eval")),
    ("train", ["task=prompting"], Job("train", "ftcli.commands.train", "TrainConfig", "train")),
])
def test_eval_task_scorer_routes_to_the_scoring_command(command, words, job):
    assert job_for(command, words) == job


def test_every_scorer_has_its_eval_schema(registered_configs):
    from hydra.core.config_store import ConfigStore

    repo = ConfigStore.instance().repo
    for scorer in SCORERS:
        assert f"base_eval_{scorer.name}.yaml" in repo
        assert f"{scorer.name}.yaml" in repo["schema"]["task"]
