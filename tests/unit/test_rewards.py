"""Reward functions of task=grpo: answer parsing, regex, length, weights, and the config check of their names."""

from __future__ import annotations

import pytest

from ftcli.cli.main import main
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.tasks.rewards import (
    LengthUnit,
    RewardConfig,
    RewardContext,
    Rewards,
    final_answer,
    length_reward,
    reference_answer,
    reward_labels,
    reward_problems,
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def score(configs, completions, rows=None, tokenizer=None, frozen=NO_FROZEN_MODELS):
    rows = rows if rows is not None else [{} for _ in completions]
    return Rewards(configs, RewardContext(tokenizer, frozen)).score(completions, ["?"] * len(completions), rows)


@pytest.mark.parametrize(("text", "answer"), [
    ("3 + 4 = 7.\n#### 7", "7"),
    ("so the total is 1,234 dollars\n#### 1,234", "1234"),
    ("#### 42.0", "42"),
    ("#### 2.50", "2.5"),
    ("#### -3", "-3"),
    ("The answer is #### 12. Then 5 more #### 9", "12"),  # the first marked answer counts
    ("#### $18", "18"),
    ("5 - 2 = 3, and 3 * 4 = 12", "12"),  # no marker: the last number
    ("pages 3-4", "4"),  # a hyphen is no minus sign
    ("it costs 1,000.00.", "1000"),
    ("#### Paris", "paris"),  # a marked answer that is no number: its text
    ("no numbers here", "no numbers here"),
])
def test_final_answer(text, answer):
    assert final_answer(text) == answer


@pytest.mark.parametrize(("completion", "reference", "reward"), [
    ("Tom has 3 + 4 = 7 apples.\n#### 7", "3 + 4 = 7\n#### 7", 1.0),
    ("3 + 4 = 7, so 7", "3 + 4 = 7\n#### 7", 1.0),  # no marker in the completion: its last number
    ("#### 7.0", "#### 7", 1.0),
    ("#### 1,200", "#### 1200", 1.0),
    ("#### 8", "3 + 4 = 7\n#### 7", 0.0),
    ("#### 7 apples, or maybe 8", "#### 7", 1.0),
    ("I think 7", "7", 1.0),  # a reference without "####" is the answer as a whole
    ("#### Paris", "Paris", 1.0),
    ("Paris, I believe", "Paris", 0.0),
    ("", "#### 7", 0.0),
])
def test_exact_answer(completion, reference, reward):
    scored = score([RewardConfig("exact_answer")], [completion], [{"answer": reference}])
    assert scored.total == [reward] and scored.parts == {"exact_answer": [reward]}
    assert reference_answer("#### 007") == "7"


def test_exact_answer_reads_the_column_it_is_given():
    scored = score([RewardConfig("exact_answer", column="solution")], ["#### 5", "#### 6"],
                   [{"solution": "#### 5", "answer": "#### 6"}, {"solution": "#### 5", "answer": "#### 6"}])
    assert scored.total == [1.0, 0.0]


def test_regex_length_and_weights_add_up(tokenizer):
    configs = [
        RewardConfig("regex", pattern=r"####\s*\d+"),
        RewardConfig("length", target=4, unit=LengthUnit.words, weight=0.5),
        RewardConfig("regex", pattern="^The", weight=-2.0),
    ]
    scored = score(configs, ["so it is #### 12", "The end", "one two three four five six seven eight"], tokenizer=tokenizer)
    assert scored.parts == {
        "regex": [1.0, 0.0, 0.0],
        "length": [length_reward(5, 4), length_reward(2, 4), length_reward(8, 4)],
        "regex_2": [0.0, 1.0, 0.0],
    }
    assert scored.parts["length"] == [-0.25, -0.5, -1.0]
    assert scored.total == pytest.approx([1.0 - 0.125, -0.25 - 2.0, -0.5])
    assert reward_labels(configs) == ["regex", "length", "regex_2"]


def test_length_in_tokens_counts_the_tokenizers_tokens(tokenizer):
    text = "hello world"
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert score([RewardConfig("length", target=n)], [text, ""], tokenizer=tokenizer).total == [0.0, -1.0]


def test_reward_model_scores_with_the_scorer_the_run_hands_in():
    loaded = []

    def load(run_dir):
        loaded.append(run_dir)
        return lambda prompts, responses: [float(len(r)) + (0.5 if p == "?" else 0.0) for p, r in zip(prompts, responses)]

    frozen = FrozenModels(load_scorer=load)
    rewards = Rewards([RewardConfig("reward_model", run_dir="/runs/rm")], RewardContext(None, frozen))
    assert rewards.score(["ab", "abcd"], ["?", "!"], [{}, {}]).total == [2.5, 4.0]
    assert rewards.score(["a"], ["?"], [{}]).total == [1.5]
    assert loaded == ["/runs/rm"]  # loaded once, when first used
    assert rewards.columns() == ()


def test_a_run_without_reward_models_says_so():
    from ftcli.errors import ModelError

    with pytest.raises(ModelError, match="cannot load the reward model"):
        score([RewardConfig("reward_model", run_dir="/runs/rm")], ["a"])


def test_settings_each_function_needs_are_checked():
    problems = reward_problems([
        RewardConfig("regex"), RewardConfig("regex", pattern="(unclosed"), RewardConfig("length"),
        RewardConfig("length", target=0), RewardConfig("reward_model"), RewardConfig("exact_answer", column=" "),
        RewardConfig("exact_anwser"), RewardConfig("regex", pattern="ok"),
    ])
    assert [p.split("=")[0].split(" ")[0] for p in problems] == [
        "task.rewards[0].pattern", "task.rewards[1].pattern", "task.rewards[2].target", "task.rewards[3].target",
        "task.rewards[4].run_dir", "task.rewards[5].column", "task.rewards[6].name",
    ]
    assert "did you mean 'exact_answer'?" in problems[6]


def test_an_unknown_reward_is_a_config_error_before_any_model_loads(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "task=grpo", "model=tiny_llama", "task.rewards=[{name:exact_answr},{name:regex,pattern:'('}]",
                 f"hydra.run.dir={run}"])
    message = " ".join(capsys.readouterr().err.split())
    assert code == 3 and not run.exists()
    assert "task.rewards[0].name='exact_answr' is not a registered reward function (did you mean 'exact_answer'?)" in message
    assert "task.rewards[1].pattern='(' is not a regular expression" in message


def test_a_reward_model_dir_must_hold_a_finished_run(tmp_path, capsys):
    code = main(["train", "task=grpo", f"task.rewards=[{{name:reward_model,run_dir:{tmp_path}}}]",
                 f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == 3 and "is not the directory of a finished run" in " ".join(capsys.readouterr().err.split())


def test_rewards_from_the_command_line_take_their_defaults(tmp_path, capsys):
    assert main(["train", "task=grpo", 'task.rewards=[{name:exact_answer},{name:regex,pattern:"####",weight:0.2}]',
                 "--cfg", "job"]) == 0
    printed = capsys.readouterr().out
    assert "pattern: '####'" in printed and "weight: 0.2" in printed and "column: answer" in printed
