"""Tests of task=qa: context windows with stride, training targets, span post-processing, bad rows."""

from __future__ import annotations

import numpy as np
import pytest

from ftcli.config.schema import DataConfig
from ftcli.engine.inference import Outputs
from ftcli.errors import DataError
from ftcli.tasks import TASKS
from ftcli.tasks.notes import NOTE, RowNote, row_notes
from ftcli.tasks.qa import LABELS, QaConfig, QuestionAnswering
from ftcli.tasks.qa_spans import SpanRules, best_span
from ftcli.tasks.qa_windows import WINDOW, Window

TASK = QuestionAnswering()
# every word a single token of the embedded (uncased WordPiece) tokenizer
CONTEXT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen."
QUESTION = "which?"  # [CLS] which ? [SEP]: context tokens start at position 4


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def row(answer: str | None, context: str = CONTEXT, question: str = QUESTION) -> dict:
    answers = {"text": [], "answer_start": []}
    if answer:
        answers = {"text": [answer], "answer_start": [context.index(answer)]}
    return {"id": "q", "question": question, "context": context, "answers": answers}


def encode(rows, tokenizer, task=None, **kwargs):
    return bound(tokenizer, task).encode(rows, "f.jsonl", **kwargs)


def bound(tokenizer=None, task=None):
    return TASK.bind(task or QaConfig(max_length=16, doc_stride=4), DataConfig(), LABELS, tokenizer)


def span_text(feature) -> str:
    window = feature[WINDOW]
    return window.context[window.offsets[feature["start_positions"]][0]:window.offsets[feature["end_positions"]][1]]


def test_qa_is_registered_with_a_two_output_head():
    entry = TASKS.get("qa")
    assert entry.config_cls is QaConfig
    assert entry.impl.label_names(None, QaConfig(), DataConfig()) == ["start", "end"]
    assert entry.impl.best_metric(QaConfig()) == "f1"
    assert entry.impl.model_class().__name__ == "AutoModelForQuestionAnswering"


def test_a_long_context_becomes_overlapping_windows_that_repeat_the_question(tokenizer):
    features = encode([row("twelve")], tokenizer)
    assert len(features) == 2
    first, second = (tokenizer.convert_ids_to_tokens(f["input_ids"]) for f in features)
    assert first[:4] == second[:4] == ["[CLS]", "which", "?", "[SEP]"]
    assert first[4:15] == "one two three four five six seven eight nine ten eleven".split()
    assert second[4:8] == first[11:15]  # doc_stride=4 tokens shared
    assert all(f[WINDOW].row == 0 and f[WINDOW].context == CONTEXT for f in features)
    # offsets cover context tokens only, and index into the context
    window = features[1][WINDOW]
    assert window.offsets[:4] == [None] * 4 and window.offsets[-1] is None
    assert [CONTEXT[s:e] for s, e in window.offsets[4:8]] == ["eight", "nine", "ten", "eleven"]


def test_an_answer_in_the_second_window_is_found_there_and_the_first_window_points_at_cls(tokenizer):
    first, second = encode([row("twelve thirteen")], tokenizer)
    assert (first["start_positions"], first["end_positions"]) == (0, 0)
    assert (second["start_positions"], second["end_positions"]) == (8, 9)
    assert span_text(second) == "twelve thirteen"


def test_an_answer_cut_by_a_window_boundary_is_learnt_only_where_it_is_whole(tokenizer):
    first, second = encode([row("ten eleven twelve")], tokenizer)  # window 1 ends at "eleven"
    assert (first["start_positions"], first["end_positions"]) == (0, 0)
    assert span_text(second) == "ten eleven twelve"


def test_unanswerable_rows_point_every_window_at_cls_and_keep_no_gold(tokenizer):
    features = encode([row(None), row("two", context="one two three.")], tokenizer)
    assert [f[WINDOW].row for f in features] == [0, 0, 1]
    assert [(f["start_positions"], f["end_positions"]) for f in features[:2]] == [(0, 0), (0, 0)]
    assert features[0][WINDOW].gold == [] and features[2][WINDOW].gold == ["two"]
    assert span_text(features[2]) == "two"


def test_predict_rows_need_no_answers_and_get_no_targets(tokenizer):
    features = encode([{"question": QUESTION, "context": CONTEXT}], tokenizer, with_labels=False)
    assert len(features) == 2 and "start_positions" not in features[0] and features[0][WINDOW].gold is None


def test_long_contexts_are_read_whole_and_blank_questions_or_contexts_noted(tokenizer):
    rows = [{"question": QUESTION, "context": CONTEXT}, {"question": " ", "context": CONTEXT},
            {"question": QUESTION, "context": ""}]
    features = encode(rows, tokenizer, with_labels=False)
    assert len(features) > len(rows)  # windows
    assert not any(f[NOTE].cut for f in features)
    assert row_notes(features, len(rows)) == [RowNote(0), RowNote(1, empty=True), RowNote(2, empty=True)]


def test_the_collator_pads_model_inputs_and_drops_windows(tokenizer):
    features = encode([row("twelve")], tokenizer)
    batch = bound(tokenizer).collator()(features)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions"}
    assert batch["input_ids"].shape == (2, 16) and batch["start_positions"].tolist() == [0, 8]


def test_an_answer_not_at_its_answer_start_names_the_file_the_record_and_the_fix(tokenizer):
    bad = row("three")
    bad["answers"]["answer_start"] = [0]
    with pytest.raises(DataError) as caught:
        encode([row("two"), bad], tokenizer)
    assert "f.jsonl: record 1" in caught.value.message and "'three'" in caught.value.message
    assert f"first occurs at {CONTEXT.index('three')}" in caught.value.hint


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"context": 42}, "'context' is int, not text"),
        ({"question": None}, "'question' is NoneType, not text"),
        ({"answers": {"text": ["two"]}}, "'answers' is"),
        ({"answers": {"text": ["two", "one"], "answer_start": [4]}}, "two lists of the same length"),
    ],
)
def test_malformed_rows_are_data_errors(tokenizer, change, message):
    with pytest.raises(DataError, match=message):
        encode([{**row("two"), **change}], tokenizer)


def test_a_missing_column_names_the_setting(tokenizer):
    with pytest.raises(DataError, match="task.context_column='passage' is not a column of f.jsonl"):
        encode([row("two")], tokenizer, QaConfig(context_column="passage"))


def test_config_checks_stride_and_columns():
    assert QaConfig().validate() == []
    problems = QaConfig(max_length=64, doc_stride=64, n_best=0, answers_column="context").validate()
    assert len(problems) == 3


# Post-processing on hand-made windows: context "Ada lives in Oslo now", tokens
# [CLS] q [SEP] ada lives in oslo now [SEP] with "oslo" at token 6.
SHORT = "Ada lives in Oslo now"
SHORT_OFFSETS = [None, None, None, (0, 3), (4, 9), (10, 12), (13, 17), (18, 21), None]


def logits(start_at: dict[int, float], end_at: dict[int, float], size: int = len(SHORT_OFFSETS)) -> np.ndarray:
    values = np.full((size, 2), -10.0, dtype=np.float32)  # what is not named is unlikely
    for i, v in start_at.items():
        values[i, 0] = v
    for i, v in end_at.items():
        values[i, 1] = v
    return values


def window(row: int = 0, offsets=SHORT_OFFSETS) -> Window:
    return Window(row, SHORT, offsets, cls_index=0)


def test_the_best_span_across_windows_wins_and_its_offsets_slice_the_context():
    weak = logits({3: 2.0}, {3: 2.0})  # "Ada" scores 4
    strong = logits({6: 3.0}, {6: 3.0})  # "Oslo" scores 6 in the second window
    span = best_span([window(), window()], [weak, strong], SpanRules())
    assert (span.text, span.start, span.end) == ("Oslo", 13, 17)
    assert SHORT[span.start:span.end] == span.text and 0.0 < span.score <= 1.0


def test_spans_must_be_context_tokens_in_order_and_short_enough():
    # the top start is question token 1, the top ends are question token 2 and "ada", before both starts
    values = logits({1: 9.0, 6: 2.0, 4: 1.0}, {2: 9.0, 3: 9.0, 7: 2.0, 4: 1.0})
    assert best_span([window()], [values], SpanRules()).text == "Oslo now"
    assert best_span([window()], [values], SpanRules(max_answer_length=1)).text == "lives"


def test_the_null_answer_wins_when_cls_beats_every_span():
    values = logits({0: 5.0, 6: 2.0}, {0: 5.0, 6: 2.0})  # null 10 > span 4
    span = best_span([window()], [values], SpanRules())
    assert (span.text, span.start, span.end) == ("", None, None)
    assert span.as_prediction() == {"answer": "", "score": round(span.score, 6), "start": None, "end": None}
    assert best_span([window()], [values], SpanRules(null_threshold=7.0)).text == "Oslo"  # 10 - 4 < 7
    assert best_span([window()], [values], SpanRules(allow_unanswerable=False)).text == "Oslo"


def test_the_lowest_null_score_over_the_windows_counts():
    sure_null = logits({0: 5.0}, {0: 5.0})
    has_span = logits({0: 1.0, 6: 2.0}, {0: 1.0, 6: 2.0})  # null 2 < span 4 in this window
    assert best_span([window(), window()], [sure_null, has_span], SpanRules()).text == "Oslo"


def test_metrics_and_predictions_give_one_result_per_row_from_its_windows():
    features = [{WINDOW: window(0)}, {WINDOW: window(0)}, {WINDOW: Window(1, SHORT, SHORT_OFFSETS, 0, gold=[])}]
    features[0][WINDOW] = Window(0, SHORT, SHORT_OFFSETS, 0, gold=["Oslo"])
    features[1][WINDOW] = Window(0, SHORT, SHORT_OFFSETS, 0, gold=["Oslo"])
    outputs = [logits({3: 2.0}, {3: 2.0}), logits({6: 3.0}, {6: 3.0}), logits({0: 5.0}, {0: 5.0})]
    predictions = bound(task=QaConfig()).predictions(Outputs(outputs, None), features)
    assert [p["answer"] for p in predictions] == ["Oslo", ""]
    scores = bound(task=QaConfig()).metrics(outputs, features)
    assert scores["exact_match"] == 1.0 and scores["f1"] == 1.0 and scores["total"] == 2


def test_the_heads_start_and_end_logits_are_read_as_two_columns_per_token():
    from types import SimpleNamespace

    import torch

    start, end = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[4.0, 5.0, 6.0]])
    stacked = bound().logits_of(SimpleNamespace(start_logits=start, end_logits=end))
    assert stacked.shape == (1, 3, 2)
    assert stacked[0, :, 0].tolist() == [1.0, 2.0, 3.0] and stacked[0, :, 1].tolist() == [4.0, 5.0, 6.0]
