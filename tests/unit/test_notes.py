"""Tests of ftcli.tasks.notes: the warnings that count cut and empty rows, and the refusal of all-empty data."""

from __future__ import annotations

import pytest

from ftcli.errors import DataError
from ftcli.tasks.notes import NOTE, RowNote, WithoutNotes, is_blank, report, report_cut, report_empty


def said(capsys) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


def notes(cut=(), empty=(), rows=10) -> list[RowNote]:
    return [RowNote(i, cut=i in cut, empty=i in empty) for i in range(rows)]


def test_blank_is_empty_or_whitespace_text_or_no_words():
    assert is_blank("") and is_blank(" \t\n") and is_blank([]) and is_blank(["", " "])
    assert not is_blank(" a ") and not is_blank(["", "a"])


def test_training_cut_says_how_many_and_how_far_the_model_goes(capsys):
    assert report_cut(notes(cut={1, 2, 3}), "train", 128, 512, "train") == 3
    assert "train: 3 of 10 rows longer than task.max_length=128 tokens were cut; raise task.max_length " \
           "(the model takes up to 512)" in said(capsys)


def test_eval_and_predict_cut_need_a_new_run(capsys):
    report_cut(notes(cut={0}), "validation", 128, 512, "eval", length_fixed=True)
    assert "validation: 1 of 10 rows longer than task.max_length=128 tokens were cut; train with a larger " \
           "task.max_length (the model takes up to 512)" in said(capsys)
    report_cut(notes(cut={0}, rows=2), "input=in.txt", 128, None, "predict", length_fixed=True)
    assert 'input=in.txt: 1 of 2 inputs longer than task.max_length=128 tokens were cut (marked "truncated": ' \
           'true); train with a larger task.max_length' in said(capsys)


def test_cut_at_the_models_own_limit_says_so(capsys):
    report_cut(notes(cut={0}), "train", 512, 512, "train")
    assert "that is all this model takes: shorten or split the texts" in said(capsys)


def test_nothing_cut_or_empty_says_nothing(capsys):
    assert report_cut(notes(), "train", 128, 512, "train") == 0
    assert report_empty(notes(), "train", "train.jsonl", "train") == []
    assert said(capsys) == ""


def test_empty_training_rows_are_counted(capsys):
    assert report_empty(notes(empty={4, 9}), "train", "train.jsonl", "train") == [4, 9]
    assert "train: 2 of 10 rows have empty text: the model is trained on them with no text to read; fix or " \
           "drop them" in said(capsys)


def test_empty_predict_inputs_are_listed(capsys):
    report_empty(notes(empty={4, 9, 12}, rows=20), "input=-", "input=-", "predict")
    assert 'input=-: 3 of 20 inputs are empty (records 4, 9, 12): their predictions mean nothing ' \
           '(marked "empty": true)' in said(capsys)
    report_empty(notes(empty=set(range(15)), rows=15), "input=-", "input=-", "predict")  # all empty: still a warning
    assert "(records 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, …)" in said(capsys)


@pytest.mark.parametrize("use", ["train", "eval"])
def test_data_whose_every_row_is_empty_is_refused(use):
    with pytest.raises(DataError, match=r"validation \(dev.jsonl\): all 3 rows have empty text") as info:
        report_empty(notes(empty={0, 1, 2}, rows=3), "validation", "dev.jsonl", use)
    assert "data.text_column" in info.value.hint


def test_report_reads_the_notes_of_every_row_once():
    features = [{NOTE: RowNote(0, cut=True)}, {NOTE: RowNote(0, cut=True)}, {NOTE: RowNote(1)}, {}]
    assert report(features, 3, "x", "x", 8, None, "predict") == [RowNote(0, cut=True), RowNote(1), RowNote(2)]


def test_collators_never_see_the_notes():
    seen = []
    WithoutNotes(seen.extend)([{"input_ids": [1], NOTE: RowNote(0)}])
    assert seen == [{"input_ids": [1]}]
