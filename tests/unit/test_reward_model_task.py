"""Tests of the reward model task: reading pairs in each layout, bad rows, cutting long pairs,
the pair batches and the Bradley–Terry step, and the scores and predictions."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch

from ftcli.config.schema import DataConfig, ModelConfig
from ftcli.errors import DataError
from ftcli.tasks import TASKS
from ftcli.tasks.notes import NOTE, RowNote
from ftcli.tasks.pairs import PairColumns, prompt_text, prompt_turns, read_answer, read_pair, split_shared_prompt
from ftcli.tasks.preference_losses import bradley_terry
from ftcli.tasks.reward_model import (
    REJECTED,
    RewardInput,
    RewardModel,
    RewardModelConfig,
    keep,
    pair_rewards,
)

COLUMNS = PairColumns()
WHERE = "pairs.jsonl: record 3"
HH_CHOSEN = "\n\nHuman: Hi.\n\nAssistant: Hello!\n\nHuman: What is 2 plus 2?\n\nAssistant: Yes, it is 4."
HH_REJECTED = "\n\nHuman: Hi.\n\nAssistant: Hello!\n\nHuman: What is 2 plus 2?\n\nAssistant: Yes, no idea."
ROWS = [
    {"prompt": "What is the capital of France?", "chosen": "Paris.", "rejected": "Lyon, I think.", "gap": 1.5},
    {"chosen": HH_CHOSEN, "rejected": HH_REJECTED, "gap": 0.0},
    {"system": "Be brief.", "prompt": "Name a colour.", "chosen": "Blue.", "rejected": "No.", "gap": 2},
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import AutoModelForSequenceClassification

    from ftcli.models.loading import build_model

    return build_model(ModelConfig("tiny:bert"), AutoModelForSequenceClassification, ["reward"]).eval()


def bound(tokenizer, **settings):
    return RewardModel().bind(RewardModelConfig(**settings), DataConfig(), ["reward"], tokenizer)


def turns(*pairs):
    return [{"role": role, "content": content} for role, content in pairs]


def test_registered_with_its_schema_and_a_regression_head():
    entry = TASKS.get("reward_model")
    assert entry.config_cls is RewardModelConfig and isinstance(entry.impl, RewardModel)
    assert entry.impl.best_metric(RewardModelConfig()) == "accuracy"
    assert entry.impl.label_names(None, RewardModelConfig(), DataConfig()) == ["reward"]
    assert entry.impl.model_config(RewardModelConfig(), None) == {"problem_type": "regression"}
    assert RewardModelConfig(chosen_column="a", rejected_column="a").validate()
    assert RewardModelConfig(refinement_column="a", output_column="a").validate()


# --- reading rows -------------------------------------------------------------------------------


def test_separate_columns():
    assert read_pair(ROWS[2], COLUMNS, WHERE) == ("Name a colour.", "Blue.", "No.", "Be brief.")


def test_hh_conversations_split_at_the_last_assistant_marker_of_their_shared_prefix():
    prompt, chosen, rejected = split_shared_prompt(HH_CHOSEN, HH_REJECTED, WHERE)
    assert prompt == "\n\nHuman: Hi.\n\nAssistant: Hello!\n\nHuman: What is 2 plus 2?\n\nAssistant:"
    assert (chosen, rejected) == ("Yes, it is 4.", "Yes, no idea.")  # "Yes, " is shared, but part of the answers
    assert read_pair({"chosen": HH_CHOSEN, "rejected": HH_REJECTED}, COLUMNS, WHERE)[1:3] == (chosen, rejected)
    assert prompt_turns(prompt, "Be kind.") == turns(
        ("system", "Be kind."), ("user", "Hi."), ("assistant", "Hello!"), ("user", "What is 2 plus 2?"))


def test_whole_conversations_beside_their_prompt_lose_its_copy():
    prompt = "\n\nHuman: What is 2 plus 2?\n\nAssistant:"
    row = {"prompt": prompt, "chosen": prompt + " 4.", "rejected": prompt + " 5."}
    assert read_pair(row, COLUMNS, WHERE) == (prompt, "4.", "5.", None)


def test_message_lists_share_their_leading_turns():
    leading = turns(("system", "Be brief."), ("user", "Hi."), ("assistant", "Hello!"), ("user", "2 plus 2?"))
    row = {"chosen": [*leading, *turns(("assistant", "4."))], "rejected": [*leading, *turns(("assistant", "5."))]}
    pair = read_pair(row, COLUMNS, WHERE)
    assert pair == (leading, "4.", "5.", None)
    assert prompt_text(pair.prompt, None) == "System: Be brief.\n\nUser: Hi.\n\nAssistant: Hello!\n\nUser: 2 plus 2?"


def test_a_prompt_column_of_turns_with_one_turn_answers():
    row = {"prompt": turns(("user", "2 plus 2?")), "chosen": turns(("assistant", "4.")),
           "rejected": turns(("assistant", "5."))}
    pair = read_pair(row, COLUMNS, WHERE)
    assert pair == (turns(("user", "2 plus 2?")), "4.", "5.", None)
    assert prompt_text(pair.prompt, "Be brief.") == "Be brief.\n\n2 plus 2?"


def test_a_single_answer_with_its_prompt_or_as_a_whole_conversation():
    assert read_answer({"prompt": "Q?", "response": "A."}, COLUMNS, "response", WHERE) == ("Q?", "A.", None)
    assert read_answer({"response": HH_CHOSEN}, COLUMNS, "response", WHERE)[1] == "Yes, it is 4."
    row = {"response": turns(("user", "Q?"), ("assistant", "A."))}
    assert read_answer(row, COLUMNS, "response", WHERE) == (turns(("user", "Q?")), "A.", None)


@pytest.mark.parametrize(("row", "message"), [
    ({"prompt": "Q?", "rejected": "No."}, "record 3: has no 'chosen' (it has: 'prompt', 'rejected')"),
    ({"prompt": "Q?", "chosen": None, "rejected": "No."}, "record 3: 'chosen' is null"),
    ({"prompt": "Q?", "chosen": 4, "rejected": "No."}, "record 3: 'chosen' is int"),
    ({"prompt": "Q?", "chosen": "Yes.", "rejected": "Yes."}, "record 3: 'chosen' and 'rejected' are the same answer"),
    ({"chosen": HH_CHOSEN, "rejected": HH_CHOSEN + " "}, "are the same answer"),
    ({"chosen": "Paris.", "rejected": "Lyon."}, "record 3: no prompt column, and the chosen and rejected texts share"),
    ({"chosen": "Paris.", "rejected": turns(("assistant", "Lyon."))}, "'chosen' is text but 'rejected' is a list"),
    ({"chosen": turns(("user", "a"), ("assistant", "b")), "rejected": turns(("user", "c"), ("assistant", "d"))},
     "differ before their last turn"),
    ({"chosen": turns(("assistant", "b"), ("user", "a")), "rejected": turns(("assistant", "d"))},
     "the last turn of 'chosen' is the user's"),
    ({"chosen": [{"role": "robot", "content": "x"}], "rejected": turns(("assistant", "d"))}, "chosen[0] is"),
])
def test_bad_rows_name_the_record_and_the_column(row, message):
    with pytest.raises(DataError, match="pairs.jsonl: record 3") as error:
        read_pair(row, COLUMNS, WHERE)
    assert message in error.value.message and error.value.hint


def test_an_empty_prompt_is_refused_and_an_encoder_is_told_why(tokenizer):
    row = {"prompt": "  ", "chosen": "Yes.", "rejected": "No."}
    with pytest.raises(DataError, match=r"x.jsonl: record 0: the prompt is empty \(task.input=pair: .*text pair"):
        bound(tokenizer).encode([row], "x.jsonl")
    with pytest.raises(DataError, match=r"record 0: the prompt is empty$"):
        bound(tokenizer, input="conversation").encode([row], "x.jsonl")
    only_answers = {"chosen": turns(("assistant", "Yes.")), "rejected": turns(("assistant", "No."))}
    with pytest.raises(DataError, match="the prompt is empty"):
        bound(tokenizer).encode([only_answers], "x.jsonl")


def test_a_prompt_longer_than_max_length_on_its_own_is_refused(tokenizer):
    rows = [ROWS[0], {"prompt": "word " * 40, "chosen": "Yes.", "rejected": "No."}]
    for mode in ("pair", "conversation"):
        with pytest.raises(DataError) as error:
            bound(tokenizer, max_length=32, input=mode).encode(rows, "x.jsonl")
        assert "x.jsonl: record 1: the prompt alone is " in error.value.message
        assert "more than task.max_length=32" in error.value.message


@pytest.mark.parametrize("value", ["high", None, True, float("nan")])
def test_a_margin_must_be_a_finite_number(tokenizer, value):
    row = {**ROWS[0], "gap": value}
    with pytest.raises(DataError, match="record 0: has gap=.*task.margin_column needs a finite number"):
        bound(tokenizer, margin_column="gap").encode([row], "x.jsonl")


# --- encoding -----------------------------------------------------------------------------------


def test_auto_reads_text_pairs_with_an_encoders_tokenizer_and_conversations_with_a_chat_template(tokenizer):
    assert bound(tokenizer).input_mode() is RewardInput.pair
    chatty = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    chatty.chat_template = CHAT_TEMPLATE
    assert bound(chatty).input_mode() is RewardInput.conversation
    assert bound(tokenizer, input="conversation").input_mode() is RewardInput.conversation


def test_pairs_encode_both_answers_beside_their_prompt(tokenizer):
    features = bound(tokenizer, margin_column="gap").encode(ROWS, "x.jsonl")
    first = features[0]
    assert tokenizer.decode(first["input_ids"]) == "[CLS] what is the capital of france? [SEP] paris. [SEP]"
    assert tokenizer.decode(first[REJECTED + "input_ids"]).endswith("[SEP] lyon, i think. [SEP]")
    assert first["token_type_ids"][-1] == 1
    assert first[REJECTED + "attention_mask"] == [1] * len(first[REJECTED + "input_ids"])
    assert [f["margin"] for f in features] == [1.5, 0.0, 2.0] and first[NOTE] == RowNote(0)
    assert tokenizer.decode(features[2]["input_ids"]).startswith("[CLS] be brief. name a colour. [SEP]")
    assert "margin" not in bound(tokenizer).encode(ROWS, "x.jsonl")[0]


def test_a_long_pair_loses_its_prompts_beginning_first(tokenizer):
    row = {"prompt": "one two three four five six seven eight", "chosen": "a b c", "rejected": "a b c d e f g h i j"}
    [feature] = bound(tokenizer, max_length=12).encode([row], "x.jsonl")
    assert tokenizer.decode(feature["input_ids"]) == "[CLS] three four five six seven eight [SEP] a b c [SEP]"
    # the longer answer keeps half the room for its prompt, and loses its own end
    assert tokenizer.decode(feature[REJECTED + "input_ids"]) == "[CLS] five six seven eight [SEP] a b c d e [SEP]"
    assert feature[NOTE] == RowNote(0, cut=True)


def test_keep_cuts_the_prompt_down_to_half_the_room_then_the_answer():
    assert keep(4, 3, 10) == (4, 3)
    assert keep(9, 3, 10) == (7, 3)
    assert keep(9, 9, 10) == (5, 5)
    assert keep(2, 20, 10) == (2, 8)


def test_conversations_use_the_plain_template_or_the_chat_template(tokenizer):
    [plain] = bound(tokenizer, input="conversation").encode([ROWS[2]], "x.jsonl")
    assert tokenizer.decode(plain["input_ids"]) == (
        "# # # system : be brief. # # # instruction : name a colour. # # # response : blue. [SEP]")
    chatty = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    chatty.chat_template = CHAT_TEMPLATE
    [chat] = bound(chatty).encode([ROWS[1]], "x.jsonl")
    assert chatty.decode(chat[REJECTED + "input_ids"]) == (
        "< user > hi. < assistant > hello! < user > what is 2 plus 2? < assistant > yes, no idea.")


def test_predict_rows_hold_one_answer_or_a_pair(tokenizer):
    rows = [{"prompt": "Q?", "response": "A."}, ROWS[0], {"response": HH_CHOSEN}]
    features = bound(tokenizer).encode(rows, "in.jsonl", with_labels=False)
    assert [REJECTED + "input_ids" in f for f in features] == [False, True, False]
    with pytest.raises(DataError, match="in.jsonl: record 0: has no 'response'"):
        bound(tokenizer).encode([{"prompt": "Q?", "text": "A."}], "in.jsonl", with_labels=False)
    [empty] = bound(tokenizer).encode([{"prompt": "Q?", "response": " "}], "in.jsonl", with_labels=False)
    assert empty[NOTE] == RowNote(0, empty=True)


def test_feedback_rows_are_pairs_to_train_on_and_to_score(tokenizer):
    task = bound(tokenizer, refinement_column="revised", output_column="draft")
    row = {"prompt": "What is 7 + 5?", "draft": "13.", "feedback": "7 + 5 is 12.", "revised": "12."}
    [trained] = task.encode([row], "feedback.jsonl")
    [scored] = task.encode([row], "in.jsonl", with_labels=False)
    assert tokenizer.decode(trained["input_ids"]).endswith("12. [SEP]")
    assert tokenizer.decode(trained[REJECTED + "input_ids"]).endswith("13. [SEP]")
    assert REJECTED + "input_ids" in scored


# --- batches, the training step, scores ---------------------------------------------------------


def test_the_step_averages_bradley_terry_over_pairs_of_one_forward_pass(tokenizer, tiny_model):
    task = bound(tokenizer, margin_column="gap")
    features = task.encode(ROWS, "x.jsonl")
    batch = task.collator()(features)
    assert batch["input_ids"].shape == batch[REJECTED + "input_ids"].shape and len(batch["input_ids"]) == 3
    assert batch["attention_mask"][0].tolist()[-1] == 0  # padded on the right
    step = task.training_step()
    assert int(step.units(batch)) == 3
    loss = step.loss(tiny_model, batch)

    def reward(inputs):
        return tiny_model(**{k: torch.tensor([v]) for k, v in inputs.items()}).logits[0, 0]

    keys = ("input_ids", "attention_mask", "token_type_ids")
    with torch.no_grad():
        chosen = torch.stack([reward({k: f[k] for k in keys}) for f in features])
        rejected = torch.stack([reward({k: f[REJECTED + k] for k in keys}) for f in features])
    expected = bradley_terry(chosen, rejected, torch.tensor([1.5, 0.0, 2.0])).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    logged = step.logged()
    assert logged["accuracy"] == pytest.approx(float((chosen > rejected).float().mean()))
    assert logged["mean_margin"] == pytest.approx(float((chosen - rejected).mean()), abs=1e-5)
    assert step.logged() == {}  # counted afresh after each log record
    assert [t.shape for t in pair_rewards(tiny_model, batch)] == [torch.Size([3])] * 2


def test_scores_and_predictions_read_each_answers_reward(tokenizer, tiny_model):
    task = bound(tokenizer)
    features = task.encode(ROWS, "x.jsonl")
    outputs = task.outputs(tiny_model, features, 2, nullcontext)
    rewards = np.asarray(outputs.logits)
    scores = task.scores(outputs, features)
    assert list(scores) == ["loss", "accuracy", "mean_margin", "mean_chosen_reward", "mean_rejected_reward"]
    assert scores["accuracy"] == pytest.approx(np.mean(rewards[:, 0] > rewards[:, 1]))
    assert scores["loss"] == pytest.approx(float(np.mean(np.logaddexp(0, rewards[:, 1] - rewards[:, 0]))), abs=1e-6)
    with torch.no_grad():
        batch_rewards = pair_rewards(tiny_model, task.collator()(features))
    assert np.allclose(rewards[:, 0], batch_rewards[0].numpy(), atol=1e-5)  # padding changes no reward

    mixed = task.encode([{"prompt": "Q?", "response": "A."}, ROWS[0]], "in.jsonl", with_labels=False)
    predictions = task.predictions(task.outputs(tiny_model, mixed, 8, nullcontext), mixed)
    assert set(predictions[0]) == {"reward"} and set(predictions[1]) == {"reward_chosen", "reward_rejected",
                                                                         "prefers_chosen"}
    assert {name for p in predictions for name in p} == set(task.prediction_fields())
    assert predictions[1]["prefers_chosen"] == (predictions[1]["reward_chosen"] > predictions[1]["reward_rejected"])
