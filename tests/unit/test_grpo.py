"""task=grpo: group advantages, completion masks, the KL term against the reference, the log-probabilities
the loss reads, a reward that is learnt, and prompts encoded as task=instruction writes them."""

from __future__ import annotations

import copy

import pytest
import torch

from ftcli.config.schema import DataConfig, ModelConfig
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.errors import DataError
from ftcli.tasks import TASKS
from ftcli.tasks.generating import Generated
from ftcli.tasks.grpo import PROMPT, GrpoConfig
from ftcli.tasks.grpo_step import (
    PROMPTS,
    GrpoStep,
    Prompt,
    Sampling,
    completion_logps,
    completion_mask,
    group_advantages,
    k3,
)
from ftcli.tasks.instruction import InstructionConfig
from ftcli.tasks.rewards import RewardConfig, RewardContext, Rewards

GRPO = TASKS.get("grpo").impl
ROWS = [
    {"prompt": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "3 + 4 = 7\n#### 7"},
    {"prompt": "What is 2 times 6?", "answer": "#### 12"},
]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


@pytest.fixture
def tiny_llama(tokenizer):
    from ftcli.models.loading import build_model, load_config, sync_pad_token

    cfg = ModelConfig("tiny:llama")
    model = build_model(cfg, GRPO.model_class(), [], **GRPO.model_config(GrpoConfig(), load_config(cfg)))
    sync_pad_token(model, tokenizer)
    return model


def prepared(step, model):
    from accelerate import Accelerator

    step.prepare(Accelerator(cpu=True), model)
    return step


def test_a_group_of_equal_rewards_has_no_advantage_at_all():
    rewards = torch.tensor([[0.1] * 8, [0.7] * 8, [0.0] * 8, [1.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]])
    assert (rewards[0] - rewards[0].mean()).abs().max() > 0  # the float mean alone would leave a residue
    for scale in (True, False):
        advantages = group_advantages(rewards, scale)
        assert (advantages[:3] == 0).all()
    assert group_advantages(rewards, False)[3].tolist() == pytest.approx([0.5, -0.5] + [0.0] * 6, abs=1e-7)
    spread = float(rewards[3].std())
    assert group_advantages(rewards, True)[3, :2].tolist() == pytest.approx([0.5 / (spread + 1e-4), -0.5 / (spread + 1e-4)])


def test_a_completion_keeps_its_first_stop_and_nothing_after_it():
    completions = torch.tensor([[5, 6, 2, 7, 0], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0], [5, 3, 6, 2, 0]])
    assert completion_mask(completions, [2, 3]).long().tolist() == [
        [1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0],
    ]
    assert completion_mask(completions, []).all()


def test_k3_is_zero_where_policy_and_reference_agree_and_positive_elsewhere():
    logps = torch.log(torch.tensor([0.2, 0.5, 0.9]))
    assert (k3(logps, logps) == 0).all()
    assert (k3(logps, logps + 0.3) > 0).all() and (k3(logps, logps - 0.3) > 0).all()


def batch_of(tokenizer, task, rows):
    return task.collator()(task.encode(rows, "x.jsonl"))


def test_the_kl_term_is_zero_while_the_policy_is_the_reference(tokenizer, tiny_llama):
    task = GRPO.bind(GrpoConfig(max_new_tokens=6, num_generations=3), DataConfig(), [], tokenizer)
    reference = copy.deepcopy(tiny_llama)
    frozen = FrozenModels(load_base=lambda: reference)
    rewards = Rewards([RewardConfig("length", target=3)], RewardContext(tokenizer, frozen))
    step = prepared(GrpoStep(Sampling(3, 0.5, 6), rewards, tokenizer, task.stop_ids(), frozen), tiny_llama)
    batch = batch_of(tokenizer, task, ROWS)
    assert int(step.units(batch)) == 6
    torch.manual_seed(0)
    loss = step.loss(tiny_llama, batch)
    figures = step.logged()
    assert figures["kl"] == pytest.approx(0.0, abs=1e-6)
    assert set(figures) == {"reward", "reward_std", "reward/length", "kl", "completion_length", "zero_spread"}
    assert loss.requires_grad and step.logged() == {}  # counting starts again


def test_beta_zero_never_runs_the_reference(tokenizer, tiny_llama):
    def no_reference():
        raise AssertionError("the reference was loaded")

    frozen = FrozenModels(load_base=no_reference)
    task = GRPO.bind(GrpoConfig(max_new_tokens=4, beta=0.0), DataConfig(), [], tokenizer, frozen)
    step = prepared(task.training_step(), tiny_llama)
    batch = batch_of(tokenizer, task, ROWS)
    step.loss(tiny_llama, batch).backward()
    assert "kl" not in step.logged()


def test_the_loss_reads_the_log_probabilities_generation_sampled_from(tokenizer, tiny_llama):
    """Left-padded prompts of different lengths: the loss pass numbers positions as `generate` does."""
    task = GRPO.bind(GrpoConfig(), DataConfig(), [], tokenizer)
    batch = batch_of(tokenizer, task, ROWS)
    assert batch["attention_mask"][1, 0] == 0  # the shorter prompt is padded on the left
    tiny_llama.eval()
    with torch.no_grad():
        out = tiny_llama.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], do_sample=False,
                                  max_new_tokens=5, min_new_tokens=5, output_logits=True, return_dict_in_generate=True,
                                  pad_token_id=tokenizer.pad_token_id)
        sampled = torch.stack(out.logits, dim=1).log_softmax(-1)
        new = out.sequences[:, batch["input_ids"].shape[1]:]
        expected = sampled.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        mask = torch.cat([batch["attention_mask"], torch.ones_like(new)], dim=1)
        got = completion_logps(tiny_llama, out.sequences, mask, new.shape[1], 1.0)
    assert torch.allclose(got, expected, atol=1e-5)


def toy_vocabulary():
    """A word-level tokenizer of a few letters and a 1-layer GPT-2 over it: a policy whose first answer
    token is one of four letters with about equal odds."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[SEP]": 2, "a": 3, "b": 4, "c": 5, "d": 6, "q": 7}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        eos_token="[SEP]")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=16, n_layer=1, n_head=2, n_positions=16,
                                       bos_token_id=2, eos_token_id=2, pad_token_id=0))
    with torch.no_grad():  # no stop or special token at first, so every completion has a letter to be scored on
        model.lm_head.weight[:3] -= 4.0
    return tokenizer, model


def test_a_preferred_answer_grows_likelier_in_a_few_steps():
    tokenizer, model = toy_vocabulary()
    frozen = FrozenModels(load_base=lambda: reference)
    reference = copy.deepcopy(model)
    rewards = Rewards([RewardConfig("regex", pattern="^a")], RewardContext(tokenizer, frozen))
    step = prepared(GrpoStep(Sampling(8, 0.04, 2), rewards, tokenizer, [2], frozen), model)
    batch = {"input_ids": torch.tensor([[7]] * 4), "attention_mask": torch.ones(4, 1, dtype=torch.long),
             PROMPTS: [Prompt("q", {})] * 4}

    def p_a() -> float:
        with torch.no_grad():
            return float(model(input_ids=torch.tensor([[7]])).logits[0, -1].softmax(-1)[3])

    before = p_a()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    torch.manual_seed(1)
    rewarded = []
    for _ in range(12):
        step.backward(model, batch, lambda loss: loss.backward())
        optimizer.step()
        optimizer.zero_grad()
        rewarded.append(step.logged()["reward"])
    assert before < 0.3
    assert p_a() > 0.8 and p_a() > before + 0.5
    assert sum(rewarded[-3:]) / 3 > sum(rewarded[:3]) / 3
    assert step.logged() == {}


def test_prompts_are_written_as_instruction_writes_them(tokenizer):
    grpo = GRPO.bind(GrpoConfig(), DataConfig(), [], tokenizer).encode(ROWS, "x.jsonl")
    instruction = TASKS.get("instruction").impl.bind(InstructionConfig(), DataConfig(), [], tokenizer)
    rows = [{"prompt": row["prompt"], "response": "anything"} for row in ROWS]
    assert [f["input_ids"] for f in grpo] == [f["prompt_ids"] for f in instruction.encode(rows, "x.jsonl")]
    assert grpo[0][PROMPT] == Prompt(ROWS[0]["prompt"], ROWS[0])
    messages = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}], "answer": "1"}]
    [feature] = GRPO.bind(GrpoConfig(), DataConfig(), [], tokenizer).encode(messages, "x.jsonl")
    assert tokenizer.decode(feature["input_ids"]).endswith("# # # instruction : hi # # # response :")


def test_training_rows_need_what_the_rewards_read_and_predict_rows_do_not(tokenizer):
    task = GRPO.bind(GrpoConfig(), DataConfig(), [], tokenizer)
    with pytest.raises(DataError, match="x.jsonl: record 1: has no 'answer', which task.rewards read"):
        task.encode([ROWS[0], {"prompt": "no answer"}], "x.jsonl")
    features = task.encode([ROWS[0], {"prompt": "no answer"}], "input", with_labels=False)
    predictions = task.predictions(Generated(["so #### 7", "#### 3"], None), features)
    assert predictions == [{"generated": "so #### 7", "reward": 1.0}, {"generated": "#### 3"}]
    assert task.prediction_fields() == ("generated", "reward")


def test_evaluation_scores_the_written_answers(tokenizer):
    task = GRPO.bind(GrpoConfig(rewards=[RewardConfig("exact_answer"), RewardConfig("regex", pattern="####", weight=0.5)]),
                     DataConfig(), [], tokenizer)
    features = task.encode(ROWS, "x.jsonl")
    scores = task.scores(Generated(["#### 7", "13"], None), features)
    # "#### 7" is five BERT tokens, "13" one
    assert scores == {"loss": None, "reward": 0.75, "reward/exact_answer": 0.5, "reward/regex": 0.5, "mean_length": 3.0}
    assert GRPO.best_metric(task.cfg) == "reward"


@pytest.mark.parametrize(("settings", "problem"), [
    ({"num_generations": 1}, "task.num_generations=1 must be at least 2"),
    ({"beta": -0.1}, "task.beta=-0.1 must be 0"),
    ({"rewards": []}, "task.rewards is empty"),
    ({"temperature": 0.0}, "task.temperature=0.0 must be positive"),
    ({"top_p": 0.0}, "task.top_p=0.0 must be in (0, 1]"),
    ({"max_new_tokens": 0}, "task.max_new_tokens=0 must be at least 1"),
])
def test_settings_are_checked(settings, problem):
    assert any(p.startswith(problem) for p in GrpoConfig(**settings).validate())
    assert GrpoConfig().validate() == [] and GrpoConfig(beta=0.0).validate() == []


def test_a_task_bound_without_frozen_models_still_encodes(tokenizer):
    task = GRPO.bind(GrpoConfig(), DataConfig(), [], tokenizer, NO_FROZEN_MODELS)
    assert len(task.encode(ROWS, "x.jsonl")) == 2
