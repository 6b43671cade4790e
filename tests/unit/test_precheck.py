"""Tests of ftcli.cli.precheck.check_overrides: every job composed and checked before Hydra runs."""

from __future__ import annotations

import pytest

from ftcli.cli.precheck import check_overrides
from ftcli.errors import ConfigError


@pytest.fixture
def check(config_dir, registered_configs):
    return lambda command, *argv: check_overrides(command, list(argv), config_dir)


def test_misspelt_key_gets_did_you_mean(check):
    with pytest.raises(ConfigError) as info:
        check("train", "trainer.lrr=1")
    message = info.value.message
    assert message.startswith("trainer.lrr is not a setting (did you mean 'lr'?); valid keys under trainer: epochs, ")
    assert ", lr, " in message
    assert info.value.hint == "`ftcli train --help` lists the groups and settings; overrides given: trainer.lrr=1"


def test_misspelt_nested_method_key(check):
    with pytest.raises(ConfigError, match=r"^method.rnak is not a setting \(did you mean 'rank'\?\); valid keys under method: name, rank, "):
        check("train", "method=lora", "method.rnak=3")


def test_unknown_option_lists_options(check):
    with pytest.raises(ConfigError) as info:
        check("train", "method=lorra")
    assert info.value.message == "method=lorra is not an option (did you mean 'lora'?); options for method: adapter, bitfit, freeze, full, ia3, ln_tuning, lora, lora_adapter, lora_prefix, p_tuning, prefix_tuning, prompt_tuning"


def test_multirun_finds_the_bad_job(check):
    with pytest.raises(ConfigError) as info:
        check("train", "-m", "method=full,lorra")
    assert info.value.message == "method=lorra is not an option (did you mean 'lora'?); options for method: adapter, bitfit, freeze, full, ia3, ln_tuning, lora, lora_adapter, lora_prefix, p_tuning, prefix_tuning, prompt_tuning"
    assert info.value.hint.endswith("overrides given: method=lorra")


def test_multirun_value_check_of_a_later_job(check):
    with pytest.raises(ConfigError) as info:
        check("train", "--multirun", "trainer.batch_size=1,0")
    assert info.value.problems == ["trainer.batch_size=0 must be at least 1"]


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("train", []),
        ("train", ["method=lora", "method.rank=4", "trainer.lr=1e-4", "model=tiny_bert", "debug=smoke"]),
        ("train", ["-m", "method=full,lora,freeze"]),
        ("eval", ["run_dir=runs/x"]),
        ("predict", ["run_dir=runs/x", "input=-", "output=out.jsonl"]),
    ],
)
def test_valid_overrides_pass(check, command, argv):
    assert check(command, *argv) is None


def test_values_are_checked(check):
    with pytest.raises(ConfigError) as info:
        check("train", "trainer.batch_size=0")
    assert info.value.problems == ["trainer.batch_size=0 must be at least 1"]


def test_missing_value_is_reported(check):
    with pytest.raises(ConfigError, match="^run_dir is required: add run_dir=...$"):
        check("eval")


def test_cfg_job_skips_value_checks(check):
    check("train", "--cfg", "job", "trainer.batch_size=0")
    check("eval", "--cfg", "job")


def test_cfg_job_still_rejects_unknown_keys(check):
    with pytest.raises(ConfigError, match="trainer.lrr is not a setting"):
        check("train", "--cfg", "job", "trainer.lrr=1")
