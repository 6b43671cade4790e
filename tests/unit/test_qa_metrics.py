"""SQuAD answer normalisation, exact match and F1 (ftcli.tasks.metrics.SquadMetrics), checked by hand."""

from __future__ import annotations

import pytest

from ftcli.tasks.metrics import answer_exact_match, answer_f1, normalize_answer, squad_metrics


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an   Apple, a day!  ", "apple day"),
        ("Theatre", "theatre"),  # an article only as a whole word
        ("A.D. 1066", "ad 1066"),
        ("", ""),
    ],
)
def test_normalize_answer_lowercases_and_drops_punctuation_articles_and_extra_space(text, normalised):
    assert normalize_answer(text) == normalised


def test_exact_match_ignores_case_articles_and_punctuation():
    assert answer_exact_match("the Eiffel tower", "Eiffel Tower") == 1.0
    assert answer_exact_match("Eiffel Tower.", "Eiffel") == 0.0


def test_f1_is_token_overlap_of_normalised_answers():
    # 1 common token: precision 1/3, recall 1 -> 2 * (1/3 * 1) / (1/3 + 1) = 0.5
    assert answer_f1("in Paris France", "Paris") == pytest.approx(0.5)
    # "red old mill" vs "old mill": precision 2/3, recall 1 -> 0.8
    assert answer_f1("the red old mill", "old mill") == pytest.approx(0.8)
    assert answer_f1("London", "Paris") == 0.0
    assert answer_f1("", "") == 1.0 and answer_f1("", "Paris") == 0.0 and answer_f1("Paris", "") == 0.0


def test_the_best_gold_answer_counts():
    scores = squad_metrics(["in Paris France"], [["Lyon", "Paris", "France, Paris"]])
    # against "France, Paris": precision 2/3, recall 1 -> F1 0.8
    assert scores == {"exact_match": 0.0, "f1": pytest.approx(0.8), "total": 1}


def test_unanswerable_questions_are_right_only_when_the_prediction_is_empty():
    predictions = ["the Eiffel tower", "in Paris France", "", "1889"]
    references = [["Eiffel Tower"], ["Paris"], [], []]
    scores = squad_metrics(predictions, references)
    assert scores["exact_match"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert scores["f1"] == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert scores["total"] == 4
    assert scores["HasAns_exact_match"] == pytest.approx(0.5) and scores["HasAns_f1"] == pytest.approx(0.75)
    assert scores["HasAns_total"] == 2
    assert scores["NoAns_exact_match"] == pytest.approx(0.5) and scores["NoAns_f1"] == pytest.approx(0.5)
    assert scores["NoAns_total"] == 2


def test_no_breakdown_when_every_question_has_an_answer():
    assert set(squad_metrics(["x"], [["x"]])) == {"exact_match", "f1", "total"}
