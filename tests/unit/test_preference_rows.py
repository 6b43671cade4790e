"""Reading preference rows: strings, HH conversations, messages lists, feedback rows and unpaired
completions, and the errors that name the row."""

from __future__ import annotations

import pytest

from ftcli.errors import DataError
from ftcli.tasks import pairs
from ftcli.tasks.pairs import split_shared_prompt
from ftcli.tasks.preference_rows import PairColumns, holds_pair, read_completion, read_pair, row_prompt

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


FEEDBACK = {"prompt": "What is 7 + 5?", "output": "7 + 5 = 13.", "feedback": "The sum is wrong: 7 + 5 is 12, not 13.",
            "refinement": "7 + 5 = 12.", "refinement_passed": True}


def test_a_feedback_row_prefers_its_refinement_to_its_output():
    assert pairs.read_pair(FEEDBACK, COLUMNS, WHERE) == ("What is 7 + 5?", "7 + 5 = 12.", "7 + 5 = 13.", None)
    read = pair({**FEEDBACK, "system": "Be brief."})
    assert read.turns == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 7 + 5?"}]
    assert (read.chosen, read.rejected) == ("7 + 5 = 12.", "7 + 5 = 13.")


def test_a_row_with_a_chosen_column_is_a_pair_whatever_else_it_holds():
    row = {**FEEDBACK, "chosen": "12.", "rejected": "13."}
    assert pairs.read_pair(row, COLUMNS, WHERE)[1:3] == ("12.", "13.")


def test_the_feedback_columns_can_be_renamed():
    columns = PairColumns(prompt="question", output="draft", refinement="revised")
    row = {"question": "Plural of 'mouse'?", "draft": "Mouses.", "critique": "Irregular: mice.", "revised": "Mice."}
    assert pairs.read_pair(row, columns, WHERE) == ("Plural of 'mouse'?", "Mice.", "Mouses.", None)
    with pytest.raises(DataError, match=r"record 3: has no 'draft'"):  # the default names are not looked for
        pairs.read_pair({"question": "Q?", "output": "A.", "revised": "B."}, columns, WHERE)


@pytest.mark.parametrize(("row", "says"), [
    ({"prompt": "Hi", "refinement": "Hello."},
     "has no 'output', which a feedback row (no 'chosen') needs beside 'refinement'"),
    ({"prompt": "Hi", "output": "Go away.", "feedback": "Be kind."}, "has no 'refinement', which a feedback row"),
    ({"prompt": "Hi", "output": "Go away.", "refinement": None}, "'refinement' is null, which a feedback row"),
    ({"prompt": "Hi", "output": "Hello.", "refinement": "Hello."}, "the refinement equals the output"),
    ({"prompt": "Hi", "output": ["Go away."], "refinement": "Hello."}, "'output' is a list, not text"),
    ({"output": "Go away.", "refinement": "Hello."}, "a feedback row has no 'prompt'"),
    ({"prompt": " ", "output": "Go away.", "refinement": "Hello."}, "the prompt is empty"),
])
def test_bad_feedback_rows_are_refused_with_the_row_named(row, says):
    with pytest.raises(DataError) as error:
        pair(row)
    assert WHERE in str(error.value) and says in str(error.value)


def test_a_row_holds_a_pair_to_score_with_a_chosen_answer_or_a_refinement():
    assert holds_pair({"prompt": "Hi", "chosen": "Hello.", "rejected": "No."}, COLUMNS)
    assert holds_pair(FEEDBACK, COLUMNS)
    assert not holds_pair({"prompt": "Hi", "output": "Hello."}, COLUMNS)  # one answer: scored or answered anew
    assert not holds_pair({"prompt": "Hi", "chosen": None}, COLUMNS)


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
