"""Tests of `task=feedback`: the sequence each objective builds, the tokens that carry the loss,
what generation starts from, the filters, and bad rows named."""

from __future__ import annotations

import logging

import pytest

from ftcli.config.schema import DataConfig
from ftcli.engine.step import IGNORE_INDEX as IGNORE
from ftcli.errors import DataError
from ftcli.tasks import TASKS
from ftcli.tasks.feedback import FeedbackConfig, similarity
from ftcli.tasks.feedback_rows import Objective
from ftcli.tasks.notes import NOTE

TASK = TASKS.get("feedback").impl
ROW = {"prompt": "what is 2 + 2?", "output": "2 + 2 = 5", "feedback": "the sum is wrong.", "refinement": "2 + 2 = 4"}
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>\n{% endif %}"
)

# Per objective: the whole sequence, and each run of consecutive tokens that carries the loss,
# as the embedded (uncased) tokenizer writes them with the plain template.
EXPECTED = {
    Objective.critique: (
        "# # # instruction : what is 2 + 2? an answer : 2 + 2 = 5 what is wrong with this answer, and how should it "
        "change? # # # response : the sum is wrong. [SEP]",
        ["the sum is wrong. [SEP]"],
    ),
    Objective.refine: (
        "# # # instruction : what is 2 + 2? an answer : 2 + 2 = 5 feedback on it : the sum is wrong. write a better "
        "answer that follows the feedback. # # # response : 2 + 2 = 4 [SEP]",
        ["2 + 2 = 4 [SEP]"],
    ),
    Objective.imitate: (
        "# # # instruction : what is 2 + 2? # # # response : 2 + 2 = 4 [SEP]",
        ["2 + 2 = 4 [SEP]"],
    ),
    Objective.hindsight: (
        "# # # instruction : what is 2 + 2? # # # response : a worse answer : 2 + 2 = 5 what is wrong with it : the "
        "sum is wrong. a better answer : 2 + 2 = 4 [SEP]",
        ["2 + 2 = 5", "2 + 2 = 4 [SEP]"],
    ),
}
PROMPTS = {  # what generation continues, per objective
    Objective.critique: "# # # instruction : what is 2 + 2? an answer : 2 + 2 = 5 what is wrong with this answer, "
    "and how should it change? # # # response :",
    Objective.imitate: "# # # instruction : what is 2 + 2? # # # response :",
    Objective.hindsight: "# # # instruction : what is 2 + 2? # # # response : a better answer :",
}


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def encode(tokenizer, rows, with_labels=True, **settings):
    return TASK.bind(FeedbackConfig(**settings), DataConfig(), [], tokenizer).encode(rows, "x.jsonl", with_labels)


def trained_runs(tokenizer, feature) -> list[str]:
    """The decoded runs of consecutive tokens whose label is not ignored."""
    runs, current = [], []
    for label in feature["labels"]:
        if label == IGNORE:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(label)
    return [tokenizer.decode(run) for run in [*runs, current] if run]


@pytest.mark.parametrize("objective", list(Objective))
def test_each_objective_builds_its_sequence_and_trains_only_the_model_written_parts(tokenizer, objective):
    feature = encode(tokenizer, [ROW], objective=objective)[0]
    sequence, trained = EXPECTED[objective]
    assert tokenizer.decode(feature["input_ids"]) == sequence
    assert trained_runs(tokenizer, feature) == trained
    assert [t for t in feature["labels"] if t != IGNORE] == [
        i for i, label in zip(feature["input_ids"], feature["labels"]) if label != IGNORE
    ]
    target = "feedback" if objective == Objective.critique else "refinement"
    assert feature["reference"] == ROW[target]


@pytest.mark.parametrize("objective", [Objective.critique, Objective.imitate, Objective.hindsight])
def test_generation_starts_from_the_objective_s_prompt_with_and_without_labels(tokenizer, objective):
    labelled = encode(tokenizer, [ROW], objective=objective)[0]
    assert tokenizer.decode(labelled["prompt_ids"]) == PROMPTS[objective]
    inputs = {k: ROW[k] for k in ("prompt", "output")}  # predict rows hold only what the objective reads
    unlabelled = encode(tokenizer, [inputs], with_labels=False, objective=objective)[0]
    assert unlabelled["input_ids"] == labelled["prompt_ids"]
    assert not unlabelled[NOTE].cut and not unlabelled[NOTE].empty


def test_the_chat_template_closes_the_answer_and_trains_its_closing(tokenizer):
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = CHAT_TEMPLATE
    feature = encode(tokenizer, [ROW], objective="hindsight")[0]
    assert tokenizer.decode(feature["input_ids"]).startswith("< user > what is 2 + 2? < assistant > a worse answer")
    # the template closes a turn with a newline only, which is no token here: the end token closes it
    assert trained_runs(tokenizer, feature) == ["2 + 2 = 5", "2 + 2 = 4 [SEP]"]


def test_templates_and_column_names_come_from_the_config(tokenizer):
    row = {"question": "name a colour", "draft": "dog", "critique": "not a colour", "fixed": "red"}
    feature = encode(
        tokenizer, [row], objective="refine", prompt_column="question", output_column="draft",
        feedback_column="critique", refinement_column="fixed", refine_template="Q: {prompt}\\nA: {output}\\nF: {feedback}",
    )[0]
    assert tokenizer.decode(feature["input_ids"]) == (
        "# # # instruction : q : name a colour a : dog f : not a colour # # # response : red [SEP]"
    )


def test_rows_that_teach_nothing_are_left_out_and_named(tokenizer, caplog):
    rows = [ROW, {**ROW, "feedback": "  "}, {**ROW, "refinement": "2 + 2 = 5 "}, ROW]
    with caplog.at_level(logging.WARNING):
        features = encode(tokenizer, rows, objective="hindsight")
    assert len(features) == 2
    message = caplog.text
    assert "x.jsonl: 2 of 4 rows left out" in message
    assert "1 have empty feedback (record 1)" in message
    assert "1 have a refinement equal to their output (record 2)" in message


def test_imitate_does_not_read_feedback_and_keeps_a_row_without_it(tokenizer):
    row = {"prompt": "p", "refinement": "r"}
    assert len(encode(tokenizer, [row], objective="imitate")) == 1


def test_imitating_the_outputs_themselves_is_not_refused_as_unchanged(tokenizer):
    features = encode(tokenizer, [ROW], objective="imitate", refinement_column="output")
    assert features[0]["reference"] == ROW["output"]


def test_a_split_with_every_row_left_out_is_refused(tokenizer):
    with pytest.raises(DataError, match="every one of its 2 rows was left out"):
        encode(tokenizer, [{**ROW, "feedback": ""}] * 2, objective="critique")


@pytest.mark.parametrize(("row", "match"), [
    ({"prompt": "p", "output": "o"}, r"record 0: has no 'feedback' column, which task.objective=refine reads"),
    ({**ROW, "output": 3}, r"record 0: 'output' is int, not text"),
])
def test_missing_and_non_text_columns_name_the_row_and_the_setting(tokenizer, row, match):
    with pytest.raises(DataError, match=match) as caught:
        encode(tokenizer, [ROW, row][1:], objective="refine")
    assert "task." in caught.value.hint


def test_the_filter_column_keeps_rows_that_pass_it(tokenizer, caplog):
    rows = [{**ROW, "ok": True}, {**ROW, "ok": "False"}, {**ROW, "ok": "true"}]
    with caplog.at_level(logging.WARNING):
        features = encode(tokenizer, rows, objective="imitate", filter_column="ok")
    assert len(features) == 2
    assert "1 fail task.filter_column=ok (record 1)" in caplog.text
    with pytest.raises(DataError, match=r"record 0: 'ok' is 'maybe'"):
        encode(tokenizer, [{**ROW, "ok": "maybe"}], objective="imitate", filter_column="ok")


def test_min_similarity_keeps_refinements_that_take_up_their_feedback(tokenizer):
    close = {**ROW, "feedback": "say four, not five", "refinement": "two and two make four, not five"}
    far = {**ROW, "feedback": "say four, not five", "refinement": "2 + 2 = 4"}
    assert similarity(close["refinement"], close["feedback"]) > 0.5 > similarity(far["refinement"], far["feedback"])
    features = encode(tokenizer, [close, far], objective="imitate", min_similarity=0.5)
    assert [f["reference"] for f in features] == [close["refinement"]]


def test_config_checks_name_bad_templates_and_useless_filters():
    assert any("names {answer}" in p for p in FeedbackConfig(critique_template="{prompt} {answer}").validate())
    assert any("no {prompt} field" in p for p in FeedbackConfig(imitate_template="write").validate())
    assert any("would do nothing" in p for p in FeedbackConfig(objective="refine", filter_column="ok").validate())
    assert not FeedbackConfig(objective="imitate", filter_column="ok", min_similarity=0.2).validate()


def test_metrics_score_text_against_the_target(tokenizer):
    task = TASK.bind(FeedbackConfig(), DataConfig(), [], tokenizer)
    features = [{"reference": "2 + 2 = 4"}, {"reference": "the cat sat"}]
    scores = task.metrics(["2 + 2 = 4", "a dog ran"], features)
    assert scores["exact_match"] == 0.5
    assert 0.4 < scores["rougeL"] < 0.6
    assert 0 < scores["chrf"] < 100
    assert task.finish("\n    return x\n\n") == "    return x"


def test_long_prompts_lose_their_start_so_generation_stays_inside_the_position_table():
    from transformers import BertConfig, BertLMHeadModel

    from ftcli.engine.generation import within_positions

    model = BertLMHeadModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=8, max_position_embeddings=32, is_decoder=True))
    prompts = [{"input_ids": list(range(40))}, {"input_ids": [1, 2, 3]}]
    fitted, settings = within_positions(model, prompts, {"max_new_tokens": 10})
    assert fitted[0]["input_ids"] == list(range(18, 40)) and fitted[1] == prompts[1]
    assert settings["max_new_tokens"] == 10
    fitted, settings = within_positions(model, prompts, {"max_new_tokens": 100})
    assert settings["max_new_tokens"] == 16 and len(fitted[0]["input_ids"]) == 16


CODE_ROW = {
    "prompt": '"""\nAdd one to n.\n"""\ndef add_one(n):\n',
    "output": "    return n + 2\n",
    "feedback": "It adds two, not one.",
    "refinement": "    return n + 1\n",
    "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n",
}


def test_run_code_scores_written_programs_against_the_rows_tests(tokenizer):
    task = TASK.bind(FeedbackConfig(objective="imitate", run_code=True, code_timeout_s=5), DataConfig(), [], tokenizer)
    features = task.encode([CODE_ROW, CODE_ROW], "code.jsonl")
    assert features[0]["code_entry"] == "add_one"
    scores = task.metrics(["    return n + 1", "return n + 2"], features)  # a first line stripped of its indent too
    assert scores["pass@1"] == 0.5
    assert TASK.best_metric(task.cfg) == "pass@1"


def test_run_code_needs_the_tests_of_every_row(tokenizer):
    row = {k: v for k, v in CODE_ROW.items() if k != "test"}
    with pytest.raises(DataError, match=r"record 0: has no unit tests in 'test'"):
        encode(tokenizer, [row], objective="imitate", run_code=True)
