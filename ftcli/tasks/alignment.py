"""Words ↔ sub-word tokens: where each word's label goes, and where each word is in the text.

A tokenizer splits a word into one or more sub-tokens and adds special tokens; `word_ids` (one
entry per token: the index of the word it came from, or None for a special token) is the map
back. A word's tag is learnt and read at its first sub-token; the others get the ignore index
(-100, skipped by the loss), or, with `label_all_subtokens`, the word's tag with `B-` turned
into `I-`, since they continue the entity the first sub-token began.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftcli.engine.step import IGNORE_INDEX


def token_labels(
    word_ids: Sequence[int | None], word_labels: Sequence[int], label_all_subtokens: bool, inside: Sequence[int]
) -> list[int]:
    """One label id per token from one label id per word.

    `inside[label]` is the id a later sub-token of a word labelled `label` gets (`B-X` → `I-X`).
    """
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE_INDEX)
        elif word != previous:
            labels.append(word_labels[word])
        else:
            labels.append(inside[word_labels[word]] if label_all_subtokens else IGNORE_INDEX)
        previous = word
    return labels


def first_tokens(word_ids: Sequence[int | None], n_words: int) -> list[int | None]:
    """Per word, the position of its first sub-token; None for a word with no token left.

    A word has no token when truncation cut it off, or when the tokenizer drops it entirely
    (an empty string, or only characters it deletes such as control characters).
    """
    positions: list[int | None] = [None] * n_words
    for position, word in enumerate(word_ids):
        if word is not None and positions[word] is None:
            positions[word] = position
    return positions


def word_spans(word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Per word of a raw text, its `(start, end)` character span: its first token's start to its last token's end.

    Offsets come from a fast tokenizer and index the original string, so `text[start:end]` is
    the word as written (case, accents and all) even when the tokenizer normalises it.
    """
    n_words = max((w for w in word_ids if w is not None), default=-1) + 1
    spans: list[list[int]] = [[-1, -1] for _ in range(n_words)]
    for word, (start, end) in zip(word_ids, offsets):
        if word is None:
            continue
        if spans[word][0] < 0:
            spans[word][0] = start
        spans[word][1] = end
    return [(start, end) for start, end in spans]
