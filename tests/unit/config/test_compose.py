"""Tests that every config in configs/ composes with Hydra and checks into typed dataclasses."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from ftcli.cli.registered import to_typed
from ftcli.config.schema import (
    EMBEDDED_MODEL,
    DataConfig,
    EvalConfig,
    EvalStrategy,
    IlfConfig,
    Precision,
    PredictConfig,
    ScoreConfig,
    TrainConfig,
    TrainerConfig,
    plain,
)
from ftcli.errors import ConfigError
from ftcli.methods.adapter import AdapterConfig
from ftcli.methods.bitfit import BitFitConfig
from ftcli.methods.freeze import FreezeConfig
from ftcli.methods.full import FullConfig
from ftcli.methods.ia3 import IA3Config
from ftcli.methods.ln_tuning import LNTuningConfig
from ftcli.methods.lora import LoraBias, LoraConfig
from ftcli.methods.mixed import MixedConfig
from ftcli.methods.prompt import PrefixTuningConfig, PromptTuningConfig, PTuningConfig
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig
from ftcli.tasks.prompting import PromptingConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
GROUPS = ("model", "task", "method", "data", "trainer", "experiment", "debug")
OPTIONS = sorted(path for group in GROUPS for path in (CONFIGS / group).glob("*.yaml"))
EXPECTED_OPTION_COUNT = 46  # 9 model + 15 task + 12 method + 2 data + 6 trainer + 1 experiment + 1 debug

METHOD_TYPES = {
    "full": FullConfig, "freeze": FreezeConfig, "lora": LoraConfig, "bitfit": BitFitConfig, "ia3": IA3Config,
    "ln_tuning": LNTuningConfig, "prompt_tuning": PromptTuningConfig, "p_tuning": PTuningConfig,
    "prefix_tuning": PrefixTuningConfig, "adapter": AdapterConfig, "lora_adapter": MixedConfig,
    "lora_prefix": MixedConfig,
}
GLOBAL_EXPECTED = {  # options with `@package _global_`: what each sets, as (path, value)
    "experiment/sst2_lora": [
        ("method", LoraConfig()),
        ("data.dataset", "nyu-mll/glue"),
        ("data.dataset_config", "sst2"),
        ("data.text_column", "sentence"),
        ("data.label_names", ["negative", "positive"]),
        ("trainer.epochs", 1.0),
        ("trainer.batch_size", 32),
        ("trainer.eval_strategy", EvalStrategy.steps),
        ("trainer.eval_steps", 500),
    ],
    "debug/smoke": [
        ("data.max_train_samples", 64),
        ("data.max_eval_samples", 32),
        ("trainer.max_steps", 4),
        ("trainer.batch_size", 8),
        ("trainer.logging_steps", 1),
    ],
}


@pytest.fixture
def hydra_train(registered_configs):
    with initialize_config_dir(str(CONFIGS), version_base="1.3", job_name="test"):
        yield lambda *overrides: compose(config_name="train", overrides=list(overrides))


@pytest.fixture
def hydra(registered_configs):
    with initialize_config_dir(str(CONFIGS), version_base="1.3", job_name="test"):
        yield lambda name, *overrides: compose(config_name=name, overrides=list(overrides))


def attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def test_config_dir_matches_fixture(config_dir):
    assert CONFIGS == config_dir


def test_every_group_option_is_collected():
    names = [f"{p.parent.name}/{p.stem}" for p in OPTIONS]
    assert len(OPTIONS) == EXPECTED_OPTION_COUNT, names
    assert {name.split("/")[0] for name in names} == set(GROUPS)


EVAL_ONLY = {"task/prompting"}  # composed under `ftcli eval task=prompting`, refused by train


@pytest.mark.parametrize("path", OPTIONS, ids=lambda p: f"{p.parent.name}={p.stem}")
def test_option_composes_to_typed(hydra, path):
    group, option = path.parent.name, path.stem
    if f"{group}/{option}" in EVAL_ONLY:
        cfg = to_typed(hydra("eval_prompting", f"{group}={option}"), ScoreConfig)
        assert isinstance(cfg.task, PromptingConfig) and cfg.model.name_or_path == "tiny:gpt2"
        written = OmegaConf.to_container(OmegaConf.load(path))
        written.pop("defaults")
        assert_reaches(written, plain(cfg.task), group)
        with pytest.raises(ConfigError, match="trains nothing"):
            to_typed(hydra("train", f"{group}={option}"), TrainConfig)
        return
    cfg = to_typed(hydra("train", f"{group}={option}"), TrainConfig)
    assert isinstance(cfg, TrainConfig)
    assert isinstance(cfg.model.name_or_path, str)
    assert isinstance(cfg.task, TASKS.get(cfg.task.name).config_cls)
    assert type(cfg.method) in METHOD_TYPES.values()
    assert isinstance(cfg.data, DataConfig)
    assert isinstance(cfg.trainer, TrainerConfig)
    if f"{group}/{option}" in GLOBAL_EXPECTED:
        for dotted, value in GLOBAL_EXPECTED[f"{group}/{option}"]:
            assert attr(cfg, dotted) == value, dotted
        return
    if group == "task":
        assert cfg.task.name == option
    if group == "method":
        assert type(cfg.method) is METHOD_TYPES[option]
    # every value the YAML sets reaches the typed config unchanged
    written = OmegaConf.to_container(OmegaConf.load(path))
    written.pop("defaults", None)
    assert written, path
    assert_reaches(written, plain(getattr(cfg, group)), group)


def assert_reaches(written, typed, path):
    """Every value in `written` is in `typed` at the same place (nested settings included)."""
    for key, value in written.items():
        if isinstance(value, dict):
            assert_reaches(value, typed[key], f"{path}.{key}")
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):  # task.rewards
            assert len(typed[key]) == len(value), f"{path}.{key}"
            for i, item in enumerate(value):
                assert_reaches(item, typed[key][i], f"{path}.{key}[{i}]")
        else:
            assert typed[key] == value, f"{path}.{key}"


def test_trainer_gpu_inherits_default(hydra_train):
    cfg = to_typed(hydra_train("trainer=gpu"), TrainConfig)
    assert (cfg.trainer.batch_size, cfg.trainer.eval_batch_size, cfg.trainer.precision) == (32, 256, Precision.bf16)
    assert (cfg.trainer.epochs, cfg.trainer.warmup_ratio, cfg.trainer.fused_optimizer) == (3.0, 0.06, True)


def test_train_defaults(hydra_train):
    cfg = to_typed(hydra_train(), TrainConfig)
    assert cfg.model.name_or_path == EMBEDDED_MODEL
    assert cfg.task == ClassificationConfig(name="sentiment", max_length=128)
    assert cfg.method == FullConfig()
    assert cfg.data == DataConfig()
    assert cfg.trainer == TrainerConfig()
    assert (cfg.seed, cfg.overwrite) == (42, False)


def test_lora_overrides_are_typed(hydra_train):
    cfg = to_typed(hydra_train("method=lora", "method.rank=4", "method.bias=all", "method.target_modules=[query]"), TrainConfig)
    assert cfg.method == LoraConfig(rank=4, bias=LoraBias.all, target_modules=["query"])


def test_eval_composes(hydra):
    cfg = to_typed(hydra("eval", "run_dir=runs/a", "data.validation_file=v.jsonl"), EvalConfig)
    assert isinstance(cfg, EvalConfig)
    assert (cfg.run_dir, cfg.data.validation_file, cfg.batch_size) == ("runs/a", "v.jsonl", None)


def test_predict_composes(hydra):
    cfg = to_typed(hydra("predict", "run_dir=runs/a", "input=-"), PredictConfig)
    assert cfg == PredictConfig(run_dir="runs/a", input="-")


def test_ilf_composes_and_needs_its_input_output_and_refine_run(hydra):
    cfg = to_typed(hydra("ilf", "input=p.jsonl", "output=round", "refine_run=runs/r", "critique_run=runs/c"), IlfConfig)
    assert cfg == IlfConfig(input="p.jsonl", output="round", refine_run="runs/r", critique_run="runs/c")
    assert (cfg.chunk_size, cfg.batch_size, cfg.max_new_tokens, cfg.prompt_column) == (32, None, None, "prompt")
    with pytest.raises(ConfigError) as info:
        to_typed(hydra("ilf"), IlfConfig)
    assert info.value.problems == [f"{key} is required: add {key}=..." for key in ("input", "output", "refine_run")]


def test_ilf_checks_its_settings_together(hydra):
    with pytest.raises(ConfigError) as info:
        to_typed(hydra("ilf", "input=p.jsonl", "output=round", "refine_run=r", "critique_run=c",
                       "feedback_file=f.jsonl", "chunk_size=0", "id_column=''"), IlfConfig)
    assert info.value.problems == [
        "critique_run and feedback_file are both set; the feedback comes from one of them",
        "chunk_size=0 must be at least 1",
        "id_column is empty; name a column",
    ]


def test_misspelt_key_fails_at_compose(hydra_train):
    with pytest.raises(ConfigCompositionException, match="rnak"):
        hydra_train("method=lora", "method.rnak=3")


def test_wrong_type_fails_at_compose(hydra_train):
    with pytest.raises(ConfigCompositionException, match="trainer.lr=abc") as info:
        hydra_train("trainer.lr=abc")
    assert "abc" in str(info.value.__cause__)


def test_bad_enum_value_fails_at_compose(hydra_train):
    with pytest.raises(ConfigCompositionException, match="trainer.scheduler=cosin"):
        hydra_train("trainer.scheduler=cosin")


def test_unknown_group_option_fails_at_compose(hydra_train):
    with pytest.raises(MissingConfigException, match="Could not find 'method/lorra'") as info:
        hydra_train("method=lorra")
    assert sorted(info.value.options) == [
        "adapter", "bitfit", "freeze", "full", "ia3", "ln_tuning", "lora", "lora_adapter", "lora_prefix", "p_tuning",
        "prefix_tuning", "prompt_tuning",
    ]


def test_key_of_another_method_fails_at_compose(hydra_train):
    with pytest.raises(ConfigCompositionException, match="method.rank"):
        hydra_train("method=full", "method.rank=3")


def test_appended_key_composes_but_is_rejected(hydra_train):
    cfg = hydra_train("+trainer.foo=1")
    assert cfg.trainer.foo == 1
    with pytest.raises(ConfigError) as info:
        to_typed(cfg, TrainConfig)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("trainer.foo is not a known setting; valid keys under trainer: ")


def test_appended_key_close_to_a_setting_gets_did_you_mean(hydra_train):
    with pytest.raises(ConfigError) as info:
        to_typed(hydra_train("+seeds=1"), TrainConfig)
    assert info.value.problems == [
        "seeds is not a known setting (did you mean 'seed'?); "
        "valid keys: data, method, model, overwrite, seed, task, trainer"
    ]


def test_eval_without_run_dir(hydra):
    with pytest.raises(ConfigError) as info:
        to_typed(hydra("eval"), EvalConfig)
    assert info.value.problems == ["run_dir is required: add run_dir=..."]


def test_predict_lists_every_missing_value(hydra):
    with pytest.raises(ConfigError) as info:
        to_typed(hydra("predict"), PredictConfig)
    assert info.value.problems == ["input is required: add input=...", "run_dir is required: add run_dir=..."]


def test_cross_field_problems_are_reported_together(hydra_train):
    with pytest.raises(ConfigError) as info:
        to_typed(hydra_train("trainer.batch_size=0", "data.validation_ratio=2"), TrainConfig)
    assert sorted(info.value.problems) == [
        "data.validation_ratio=2.0 must be between 0 and 1",
        "trainer.batch_size=0 must be at least 1",
    ]
    assert info.value.message.startswith("2 problems:\n- ")


def test_method_validation_runs(hydra_train):
    with pytest.raises(ConfigError) as info:
        to_typed(hydra_train("method=lora", "method.rank=0", "method.dropout=1.0"), TrainConfig)
    assert sorted(info.value.problems) == ["method.dropout=1.0 must be in [0, 1)", "method.rank=0 must be at least 1"]


def test_unregistered_task_name(hydra_train):
    with pytest.raises(ConfigError, match="task.name='sentimnet' is not a registered task \\(did you mean 'sentiment'\\?\\)"):
        to_typed(hydra_train("task.name=sentimnet"), TrainConfig)


def test_method_name_must_match_its_settings(hydra_train):
    with pytest.raises(ConfigError, match="method.name='lora' does not match the method settings given \\(FullConfig\\)"):
        to_typed(hydra_train("method.name=lora"), TrainConfig)
