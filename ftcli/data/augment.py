"""EDA: new training rows from old ones by four edits of their words (Wei and Zou, 2019).

A text is cut at whitespace into tokens; a token whose letters are framed only by punctuation
(`"Great,"`) is a word, looked up in the synonym table (`ftcli.data.synonyms`) in lowercase, and
a synonym put in its place keeps the punctuation and the capitals of the word it replaces. Each
copy of a row applies one operation, the operations taking turns in a per-row seeded order, so a
row's copies spread over them evenly (the paper's own split):

- synonym replacement: n distinct words that are not stopwords and have synonyms are each
  replaced, at every place they occur, by one synonym drawn at random;
- random insertion: n times, a synonym of a random word of the text goes in at a random place;
- random swap: n times, two words at random places trade places;
- random deletion: each word goes with probability p; a text never loses its last word.

n is the rate times the text's word count, at least 1; an edited text has its words joined by
single spaces. A pair row (`pair_classification`) has
each of its texts edited by the same operation, with draws of its own: a copy where neither
text changed, or that repeats another copy, is left out. Every draw comes from a generator seeded
by the run's seed and the row's place in the split, and none from a global random state: the
copies of a row are the same in every run with that seed, whatever else the run draws.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ftcli.config.schema import AugmentConfig
from ftcli.data.readers import Row
from ftcli.data.synonyms import STOPWORDS, SynonymTable

WORD = re.compile(r"^(\W*)([^\W\d_]+)(\W*)$")  # letters framed by punctuation: prefix, word, suffix
Operation = Callable[[list[str], float, SynonymTable, random.Random], list[str]]


def words_in(texts: Iterable[str]) -> set[str]:
    """The lowercase words of `texts` that EDA may look synonyms up for: no stopwords."""
    return {key for text in texts for token in text.split() if (key := _key(token))}


def _parts(token: str) -> tuple[str, str, str] | None:
    match = WORD.match(token)
    return (match[1], match[2], match[3]) if match else None


def _key(token: str) -> str | None:
    """The word a token is looked up by, or None for a stopword or a token that is not a word."""
    part = _parts(token)
    return part[1].lower() if part and part[1].lower() not in STOPWORDS else None


def _cased(synonym: str, word: str) -> str:
    """`synonym` in the capitals of `word`: all capitals, a capital first, or as written."""
    if len(word) > 1 and word.isupper():
        return synonym.upper()
    return synonym[:1].upper() + synonym[1:] if word[:1].isupper() else synonym


def edits(rate: float, words: int) -> int:
    """How many words an operation at `rate` changes in a text of `words` words: at least 1."""
    return max(1, int(rate * words))


def synonym_replacement(tokens: list[str], rate: float, synonyms: SynonymTable, rng: random.Random) -> list[str]:
    """`edits(rate)` distinct words with synonyms replaced at every place they occur."""
    candidates = sorted({key for token in tokens if (key := _key(token)) and synonyms.get(key)})
    rng.shuffle(candidates)
    chosen = {key: rng.choice(synonyms[key]) for key in candidates[:edits(rate, len(tokens))]}
    replaced = []
    for token in tokens:
        key, part = _key(token), _parts(token)
        if key in chosen and part is not None:
            prefix, word, suffix = part
            token = prefix + _cased(chosen[key], word) + suffix
        replaced.append(token)
    return replaced


def random_insertion(tokens: list[str], rate: float, synonyms: SynonymTable, rng: random.Random) -> list[str]:
    """`edits(rate)` synonyms of the text's own words, each at a random place."""
    sources = [key for token in tokens if (key := _key(token)) and synonyms.get(key)]
    inserted = list(tokens)
    if not sources:
        return inserted
    for _ in range(edits(rate, len(tokens))):
        inserted.insert(rng.randint(0, len(inserted)), rng.choice(synonyms[rng.choice(sources)]))
    return inserted


def random_swap(tokens: list[str], rate: float, synonyms: SynonymTable, rng: random.Random) -> list[str]:
    """`edits(rate)` swaps, each of two words at distinct random places."""
    swapped = list(tokens)
    if len(swapped) < 2:
        return swapped
    for _ in range(edits(rate, len(tokens))):
        i, j = rng.sample(range(len(swapped)), 2)
        swapped[i], swapped[j] = swapped[j], swapped[i]
    return swapped


def random_deletion(tokens: list[str], rate: float, synonyms: SynonymTable, rng: random.Random) -> list[str]:
    """Each word deleted with probability `rate`; one random word is kept when all would go."""
    if len(tokens) < 2:
        return list(tokens)
    kept = [token for token in tokens if rng.random() >= rate]
    return kept or [rng.choice(tokens)]


OPERATIONS: dict[str, Operation] = {
    "synonym_replacement": synonym_replacement,
    "random_insertion": random_insertion,
    "random_swap": random_swap,
    "random_deletion": random_deletion,
}


@dataclass(frozen=True)
class Eda:
    """EDA's settings for one run: the operations that are on, with their rates, and the synonyms."""

    rates: dict[str, float]  # by operation name; only those above 0
    copies: int
    synonyms: SynonymTable

    @classmethod
    def of(cls, cfg: AugmentConfig, synonyms: SynonymTable) -> Eda:
        return cls({name: rate for name, rate in cfg.eda_rates().items() if rate > 0}, cfg.copies, synonyms)

    def copies_of(self, texts: Sequence[str], rng: random.Random) -> list[tuple[str, ...]]:
        """Up to `copies` edited versions of a row's texts (one text, or a pair), none equal to
        the row or to another copy."""
        if not self.rates:
            return []
        order = sorted(self.rates)
        rng.shuffle(order)
        seen, made = {tuple(texts)}, []
        for copy in range(self.copies):
            name = order[copy % len(order)]
            edited = tuple(" ".join(OPERATIONS[name](text.split(), self.rates[name], self.synonyms, rng))
                           for text in texts)
            if edited not in seen:
                seen.add(edited)
                made.append(edited)
        return made


def augment_rows(rows: list[Row], columns: Sequence[str], eda: Eda, seed: int) -> list[Row]:
    """The EDA copies of `rows`, in row order, each the row with its `columns` edited (its label and
    other columns as they were). A row whose column is not text gets no copies; the task's own
    encoding refuses it."""
    made = []
    for index, row in enumerate(rows):
        texts = [text for column in columns if isinstance(text := row.get(column), str)]
        if len(texts) < len(columns):
            continue
        rng = random.Random(f"eda {seed} {index}")
        made += [{**row, **dict(zip(columns, edited))} for edited in eda.copies_of(texts, rng)]
    return made
