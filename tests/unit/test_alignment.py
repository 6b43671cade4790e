"""Tests of ftcli.tasks.alignment: word labels onto sub-tokens, first sub-tokens, character spans."""

from __future__ import annotations

from ftcli.engine.step import IGNORE_INDEX as IGNORE
from ftcli.tasks.alignment import first_tokens, token_labels, word_spans

# [CLS] ada love ##lace visited zurich [SEP]: word 1 ("Lovelace") has two sub-tokens
WORD_IDS = [None, 0, 1, 1, 2, 3, None]
# labels O=0, B-LOC=1, I-LOC=2, B-PER=3, I-PER=4; words: B-PER I-PER O B-LOC
WORD_LABELS = [3, 4, 0, 1]
INSIDE = [0, 2, 2, 4, 4]


def test_labels_on_first_sub_token_only():
    assert token_labels(WORD_IDS, WORD_LABELS, False, INSIDE) == [IGNORE, 3, 4, IGNORE, 0, 1, IGNORE]


def test_label_all_sub_tokens_continues_the_entity():
    word_ids = [None, 0, 0, 0, 1, None]  # a three-piece B-PER word, then an O word
    assert token_labels(word_ids, [3, 0], True, INSIDE) == [IGNORE, 3, 4, 4, 0, IGNORE]
    assert token_labels(word_ids, [3, 0], False, INSIDE) == [IGNORE, 3, IGNORE, IGNORE, 0, IGNORE]


def test_first_tokens_marks_words_cut_off():
    assert first_tokens(WORD_IDS, 4) == [1, 2, 4, 5]
    assert first_tokens([None, 0, 1, 1, None], 4) == [1, 2, None, None]  # truncated after word 1


def test_word_spans_join_sub_token_offsets():
    # "Ada Lovelace visited" -> ada (0, 3), love (4, 8), ##lace (8, 12), visited (13, 20)
    offsets = [(0, 0), (0, 3), (4, 8), (8, 12), (13, 20), (0, 0)]
    assert word_spans([None, 0, 1, 1, 2, None], offsets) == [(0, 3), (4, 12), (13, 20)]


def test_word_spans_of_empty_text():
    assert word_spans([None, None], [(0, 0), (0, 0)]) == []
