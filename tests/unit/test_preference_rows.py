"""Reading preference rows: strings, HH conversations, messages lists and unpaired completions,
and the errors that name the row."""

from __future__ import annotations

import pytest

from ftcli.errors import DataError
from ftcli.tasks.pairs import split_shared_prompt
from ftcli.tasks.preference_rows import PairColumns, read_completion, read_pair, row_prompt

COLUMNS = PairColumns("prompt", "chosen", "rejected", "system")
WHERE = "train.jsonl: record 3"


def pair(row, system_prompt=""):
    return read_pair(row, COLUMNS, system_prompt, WHERE)


def test_strings_with_a_system_turn():
    read = pair({"prompt": "Add 2 and 3.", "chosen": "5", "rejected": "6", "system": "Be brief."})
    assert read.turns == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add 2 and 3."}]
    assert (read.chosen, read.rejected) == ("5", "6")


def test_the_configured_system_prompt_fills_in_for_rows_without_one():
    read = pair({"prompt": "Hi", "chosen": "Hello.", "rejected": "Go away."}, system_prompt="Be kind.")
    assert read.turns[0] == {"role": "system", "content": "Be kind."}


def test_whole_hh_conversations_share_their_prompt_turns():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello, how can I help?\n\nHuman: Two plus two?\n\nAssistant: Four."
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello, how can I help?\n\nHuman: Two plus two?\n\nAssistant: Five, I think."
    read = pair({"chosen": chosen, "rejected": rejected})
    assert read.turns == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Two plus two?"},
    ]
    assert (read.chosen, read.rejected) == ("Four.", "Five, I think.")


def test_the_shared_prompt_ends_at_a_turn_not_inside_an_answer():
    # both answers start with "Four": the prompt must still end at "Assistant:"
    prompt, chosen, rejected = split_shared_prompt("\n\nHuman: 2+2?\n\nAssistant: Four.", "\n\nHuman: 2+2?\n\nAssistant: Fourteen.", WHERE)
    assert prompt == "\n\nHuman: 2+2?\n\nAssistant:" and (chosen, rejected) == ("Four.", "Fourteen.")


def test_an_hh_prompt_in_its_own_column_is_read_as_turns():
    row = {"prompt": "\n\nHuman: Hi\n\nAssistant: Hey.\n\nHuman: Name a colour.\n\nAssistant:", "chosen": "Blue.",
           "rejected": "No."}
    assert [t["role"] for t in pair(row).turns] == ["user", "assistant", "user"]


def test_messages_lists_share_their_leading_turns():
    ask = [{"role": "user", "content": "Capital of France?"}]
    row = {"chosen": [*ask, {"role": "assistant", "content": "Paris."}],
           "rejected": [*ask, {"role": "assistant", "content": "Lyon."}]}
    read = pair(row)
    assert read.turns == ask and (read.chosen, read.rejected) == ("Paris.", "Lyon.")


def test_messages_answers_with_the_prompt_in_its_own_column():
    row = {"prompt": [{"role": "user", "content": "Capital of France?"}],
           "chosen": [{"role": "assistant", "content": "Paris."}],
           "rejected": [{"role": "assistant", "content": "Lyon."}]}
    read = pair(row)
    assert read.turns == row["prompt"] and read.chosen == "Paris."


@pytest.mark.parametrize(("row", "says"), [
    ({"prompt": "Hi", "rejected": "No."}, "has no 'chosen'"),
    ({"prompt": "Hi", "chosen": "Hello.", "rejected": "Hello."}, "the same answer"),
    ({"prompt": "  ", "chosen": "Hello.", "rejected": "No."}, "the prompt is empty"),
    ({"prompt": "Hi", "chosen": "", "rejected": "No."}, "the chosen answer is empty"),
    ({"prompt": "Hi", "chosen": 3, "rejected": "No."}, "'chosen' is int, not a text or a list of turns"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"}, "share no prompt ending in"),
])
def test_bad_rows_are_refused_with_the_row_named(row, says):
    with pytest.raises(DataError) as error:
        pair(row)
    assert WHERE in str(error.value) and says in str(error.value)


def test_a_predict_prompt_may_be_text_an_hh_conversation_or_turns():
    assert row_prompt({"prompt": "Hi"}, "prompt", WHERE) == [{"role": "user", "content": "Hi"}]
    assert [t["role"] for t in row_prompt({"prompt": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:"},
                                          "prompt", WHERE)] == ["user", "assistant", "user"]
    with pytest.raises(DataError, match="record 3: the prompt is empty"):
        row_prompt({"prompt": " "}, "prompt", WHERE)


@pytest.mark.parametrize(("label", "desirable"), [(True, True), (False, False), ("true", True), ("False", False)])
def test_unpaired_completions_read_their_label(label, desirable):
    turns, text, good = read_completion({"prompt": "Hi", "completion": "Hello.", "label": label}, COLUMNS,
                                        "completion", "label", "", WHERE)
    assert turns == [{"role": "user", "content": "Hi"}] and text == "Hello." and good is desirable


def test_an_unpaired_label_that_is_not_true_or_false_is_refused():
    with pytest.raises(DataError, match=r"record 3: 'label' is 'maybe', not true or false"):
        read_completion({"prompt": "Hi", "completion": "Hello.", "label": "maybe"}, COLUMNS, "completion", "label", "",
                        WHERE)
