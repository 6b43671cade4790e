"""The config layer stands below the registries: rules that need them are supplied from above."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftcli.cli.registered import RULES
from ftcli.config.schema import ModelConfig, TrainConfig
from ftcli.methods.lora import LoraConfig
from ftcli.methods.mixed import MixedConfig
from ftcli.methods.prompt import PTuningConfig
from ftcli.tasks.classification import ClassificationConfig
from ftcli.tasks.instruction import InstructionConfig
from ftcli.tasks.prompting import PromptingConfig


def test_config_layer_imports_no_registry():
    code = (
        "import sys, ftcli.config, ftcli.config.schema, ftcli.config.checks, ftcli.config.store; "
        "print(sorted(m for m in sys.modules if m.startswith(('ftcli.tasks', 'ftcli.methods'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}  # this checkout's ftcli
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout == "[]\n"


def train(task, method) -> TrainConfig:
    return TrainConfig(model=ModelConfig(name_or_path="tiny:bert"), task=task, method=method)


def test_a_scorer_is_refused_for_training_by_its_registration():
    assert RULES.across_groups(train(PromptingConfig(), LoraConfig())) == [
        "task=prompting trains nothing: it scores a pretrained model as it is; "
        "run `ftcli eval task=prompting model=...` instead"
    ]
    assert RULES.registered(train(PromptingConfig(), LoraConfig())) == []  # its name is a task-group name


@pytest.mark.parametrize(("method", "named"), [
    (PTuningConfig(), "p_tuning"),
    (MixedConfig(components=["lora", "prefix_tuning"]), "prefix_tuning"),
    (MixedConfig(components=["lora", "adapter"]), None),
    (LoraConfig(), None),
])
def test_packing_rule_asks_each_part_whether_it_learns_virtual_tokens(method, named):
    problems = RULES.across_groups(train(InstructionConfig(packing=True), method))
    assert problems == ([] if named is None else [
        f"task.packing=true cannot be combined with {named}: PEFT drops the position ids that keep "
        "packed examples apart (and prefix tuning's cached keys turn the separation off); "
        "set task.packing=false or use method=lora, adapter or full"
    ])
    assert RULES.across_groups(train(InstructionConfig(packing=False), method)) == []


def test_rules_leave_other_commands_alone():
    from ftcli.config.schema import EvalConfig

    assert RULES.across_groups(EvalConfig(run_dir="r")) == [] == RULES.registered(EvalConfig(run_dir="r"))
    assert RULES.registered(train(ClassificationConfig(name="sentiment"), LoraConfig())) == []
