"""EDA (`ftcli.data.augment`): each operation's behaviour, exact, and the copies of whole rows, seeded."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from ftcli.config.schema import AugmentConfig
from ftcli.data import augment
from ftcli.data.augment import (
    Eda,
    augment_rows,
    edits,
    random_deletion,
    random_insertion,
    random_swap,
    synonym_replacement,
    words_in,
)

SYNONYMS = {"movie": ("film", "picture"), "great": ("fine", "superb"), "plot": ("story",), "the": ("a",)}


def parity(before: list[str], after: list[str]) -> int:
    """The parity of the permutation taking `before` (distinct tokens) to `after`: 0 even, 1 odd."""
    where = [before.index(token) for token in after]
    seen, odd = set(), 0
    for start in range(len(where)):
        length = 0
        while start not in seen:
            seen.add(start)
            start, length = where[start], length + 1
        odd += max(0, length - 1)
    return odd % 2


def test_edits_are_the_rate_times_the_words_and_at_least_one():
    assert [edits(0.1, 9), edits(0.1, 10), edits(0.1, 30), edits(0.25, 10), edits(1.0, 4)] == [1, 1, 3, 2, 4]


@pytest.mark.parametrize("seed", range(20))
def test_deletion_never_empties_a_text(seed):
    tokens = "one two three four five".split()
    rng = random.Random(seed)
    everything = random_deletion(tokens, 1.0, {}, rng)
    assert len(everything) == 1 and everything[0] in tokens  # all would go: one word is kept
    assert random_deletion(tokens, 0.0, {}, rng) == tokens
    assert random_deletion(["alone"], 1.0, {}, rng) == ["alone"]
    some = random_deletion(tokens, 0.5, {}, rng)
    assert some and [t for t in tokens if t in some] == some  # what is left keeps its order


@pytest.mark.parametrize(("words", "rate"), [(10, 0.1), (30, 0.1), (30, 0.2), (7, 1.0)])
def test_swap_makes_exactly_its_count_of_transpositions(words, rate):
    tokens = [f"w{i}" for i in range(words)]
    for seed in range(10):
        swapped = random_swap(tokens, rate, {}, random.Random(seed))
        assert sorted(swapped) == sorted(tokens)
        # each swap is one transposition of two distinct places, so the parity of the result is the count's
        assert parity(tokens, swapped) == edits(rate, words) % 2
        assert sum(a != b for a, b in zip(tokens, swapped)) <= 2 * edits(rate, words)
    once = random_swap(tokens, 1 / words, {}, random.Random(0))
    assert sum(a != b for a, b in zip(tokens, once)) == 2
    assert random_swap(["alone"], 1.0, {}, random.Random(0)) == ["alone"]


def test_insertion_inserts_synonyms_of_the_texts_own_words():
    tokens = "The movie had a great plot".split()
    own = {"movie", "great", "plot"}  # "the" is a stopword: never the source of an insertion
    for seed in range(20):
        inserted = random_insertion(tokens, 0.5, SYNONYMS, random.Random(seed))
        assert len(inserted) == len(tokens) + edits(0.5, len(tokens))
        extra = Counter(inserted) - Counter(tokens)
        assert sum(extra.values()) == edits(0.5, len(tokens))
        assert set(extra) <= {s for word in own for s in SYNONYMS[word]}
        it = iter(inserted)
        assert all(token in it for token in tokens)  # the text's own words stay, in order
    unknown = "nothing known here".split()
    assert random_insertion(unknown, 1.0, SYNONYMS, random.Random(0)) == unknown


def test_replacement_uses_only_the_synonym_source_and_keeps_case_and_punctuation():
    tokens = "The movie, the MOVIE and the Great plot.".split()
    for seed in range(20):
        replaced = synonym_replacement(tokens, 1.0, SYNONYMS, random.Random(seed))
        assert len(replaced) == len(tokens)
        for before, after in zip(tokens, replaced):
            if before != after:
                core = before.strip(",.").lower()
                assert after.strip(",.").lower() in SYNONYMS[core] and core != "the"
        assert replaced[0] == replaced[2].capitalize() == "The"  # a stopword is never replaced
        # every place of a chosen word gets the same synonym, in the word's own capitals and punctuation
        movie = replaced[1].rstrip(",")
        assert replaced[1].endswith(",") and replaced[3] == movie.upper() and movie in SYNONYMS["movie"]
        assert replaced[6][0].isupper() and replaced[7].endswith(".")


def test_replacement_changes_its_count_of_distinct_words():
    tokens = "movie great plot movie".split()
    for seed in range(20):
        replaced = synonym_replacement(tokens, 0.25, SYNONYMS, random.Random(seed))  # edits: 1 of 3 words
        changed = {before for before, after in zip(tokens, replaced) if before != after}
        assert len(changed) == 1
        assert (replaced[0] == replaced[3]) and (replaced[0] != "movie") == ("movie" in changed)


def test_words_in_leaves_out_stopwords_numbers_and_punctuation():
    assert words_in(["The movie, 2 times!", "GREAT don't (plot)"]) == {"movie", "times", "great", "plot"}


ROWS = [{"text": f"the movie number {i} had a great plot and a sad end", "label": i % 2, "id": i} for i in range(6)]


def eda(**settings) -> Eda:
    return Eda.of(AugmentConfig(**{"copies": 3, **settings}), SYNONYMS)


def test_copies_are_seeded_and_keep_the_rows_other_columns():
    first = augment_rows(ROWS, ["text"], eda(), seed=1)
    assert json.dumps(first) == json.dumps(augment_rows(ROWS, ["text"], eda(), seed=1))
    assert first != augment_rows(ROWS, ["text"], eda(), seed=2)
    assert 0 < len(first) <= 3 * len(ROWS)
    originals = {row["id"]: row for row in ROWS}
    for copy in first:
        row = originals[copy["id"]]
        assert copy["label"] == row["label"] and copy["text"] != row["text"] and set(copy) == set(row)
    assert [copy["id"] for copy in first] == sorted(copy["id"] for copy in first)  # in row order
    texts = [(copy["id"], copy["text"]) for copy in first]
    assert len(set(texts)) == len(texts)  # no copy repeats another of its row


def test_a_rows_copies_do_not_depend_on_the_other_rows():
    alone = augment_rows(ROWS[:1], ["text"], eda(), seed=5)
    assert alone == [copy for copy in augment_rows(ROWS, ["text"], eda(), seed=5) if copy["id"] == 0]


def test_copies_take_the_operations_in_turn(monkeypatch):
    used = []

    def recorder(name):
        def operation(tokens, rate, synonyms, rng):
            used.append(name)
            return [*tokens, f"{name}-{len(used)}"]
        return operation

    monkeypatch.setattr(augment, "OPERATIONS", {name: recorder(name) for name in augment.OPERATIONS})
    made = augment_rows(ROWS[:1], ["text"], eda(copies=8), seed=0)
    assert len(made) == 8 and Counter(used) == {name: 2 for name in augment.OPERATIONS}
    used.clear()
    augment_rows(ROWS[:1], ["text"], eda(copies=8, random_swap=0.0, random_deletion=0.0), seed=0)
    assert Counter(used) == {"synonym_replacement": 4, "random_insertion": 4}  # a rate of 0 turns one off


def test_pair_rows_have_each_text_edited():
    pairs = [{"text": "a great movie with a plot", "text_pair": "one superb film and its story", "label": "same"}]
    made = augment_rows(pairs, ["text", "text_pair"], eda(copies=6, synonym_replacement=0.0, random_insertion=0.0),
                        seed=3)
    assert made and all(copy["label"] == "same" for copy in made)
    for copy in made:
        for column in ("text", "text_pair"):  # swapped or deleted words only: none comes from elsewhere
            assert not Counter(copy[column].split()) - Counter(pairs[0][column].split())
    assert any(copy["text_pair"] != pairs[0]["text_pair"] for copy in made)
    assert any(copy["text"] != pairs[0]["text"] for copy in made)


def test_a_row_whose_text_is_not_text_gets_no_copies():
    assert augment_rows([{"text": 7, "label": 0}, {"label": 1}], ["text"], eda(), seed=0) == []


@pytest.mark.parametrize(("settings", "problem"), [
    ({"copies": -1}, "copies=-1 must be 0"),
    ({"random_swap": 1.5}, "random_swap=1.5 must be between 0 and 1"),
    ({"copies": 2, "synonym_replacement": 0.0, "random_insertion": 0.0, "random_swap": 0.0, "random_deletion": 0.0},
     "changes nothing"),
    ({"copies": 2, "synonyms": []}, "data.augment.synonyms is empty"),
    ({"synonyms": ["file"]}, "synonyms_file is not set"),
    ({"synonyms_file": "syn.json"}, "does not list file"),
    ({"neighbours": 0}, "neighbours=0 must be at least 1"),
    ({"min_similarity": 2.0}, "must be a cosine"),
    ({"rewrite_runs": [" "]}, "rewrite_runs[0] is empty"),
])
def test_settings_that_cannot_work_are_problems(settings, problem):
    from ftcli.config.schema import SynonymSource

    if "synonyms" in settings:
        settings = {**settings, "synonyms": [SynonymSource(name) for name in settings["synonyms"]]}
    problems = AugmentConfig(**settings).validate()
    assert len(problems) == 1 and problem in problems[0]
    assert AugmentConfig(copies=2).validate() == []
