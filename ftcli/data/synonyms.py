"""Where EDA's synonyms come from, offline: the model's own input embeddings, or a user's file.

A synonym table maps a lowercase word to its synonyms, in order of preference. Two sources fill it
(`data.augment.synonyms`), and both may: the nearest neighbours of each word of the training texts
among the whole words of the model's vocabulary, by cosine similarity of their input-embedding
rows (`embedding_synonyms`); and a JSON file of synonyms (`read_synonyms`). No package on the
package index ships an English thesaurus that reads offline here (WordNet readers download their
data on first use), so there is no third source.

Input-embedding neighbours are near in use, not always in meaning: "good" lies near "great" but
also near "bad". `min_similarity` and `neighbours` bound how far a synonym may be.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ftcli.errors import DataError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

SynonymTable = Mapping[str, Sequence[str]]

# Function words: never replaced, never the source of an insertion, never offered as a synonym.
# Written out rather than taken from scikit-learn, whose list (documented there as having known
# issues) also holds content words such as "fire", "system" and "bill".
STOPWORDS = frozenset("""
a about above across after again against all also although always am among an and another any are around as at
be because been before being behind below between beyond both but by can could did do does doing down during each
either else even ever every few for from further had has have having he her here hers herself him himself his how i
if in into is it its itself just many may me might mine more most much must my myself neither never no nor not now
of off often on once only onto or other our ours ourselves out over own same shall she should since so some still
such than that the their theirs them themselves then there these they this those though through to too toward towards
under unless until up upon us very via was we were what when where whether which while who whom whose why will with
within without would yet you your yours yourself yourselves
""".split())
QUERY_CHUNK = 512  # words compared with the whole vocabulary at once: a chunk's similarities stay small in memory


def whole_words(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The vocabulary entries that are a whole lowercase word of two letters or more as they stand in
    running text, each with its token id: `dog`, `Ġdog` or `▁dog` by the tokenizer's kind, not a word
    piece (`##ing`), a cased entry, a number or punctuation; stopwords are left out.

    An entry starts a word when the tokenizer writes a space before its second use in a row
    (`dog dog`), which holds for WordPiece, byte-level BPE and SentencePiece vocabularies alike.
    """
    words: dict[str, int] = {}
    for token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        word = tokenizer.convert_tokens_to_string([token]).strip()
        if len(word) < 2 or not word.isalpha() or word != word.lower() or word in STOPWORDS or word in words:
            continue
        if tokenizer.convert_tokens_to_string([token, token]).strip() == f"{word} {word}":
            words[word] = token_id
    return words


def nearest_words(vectors: torch.Tensor, words: Sequence[str], queries: Iterable[str], k: int,
                  min_similarity: float) -> dict[str, tuple[str, ...]]:
    """For each query among `words`, the `k` other words whose rows of `vectors` have the highest cosine
    similarity to its own, most similar first, leaving out those below `min_similarity`.

    `vectors` holds one row per word of `words`; a query that is not one of `words` has no neighbours.
    """
    import torch

    index = {word: i for i, word in enumerate(words)}
    asked = [word for word in dict.fromkeys(queries) if word in index]
    unit = torch.nn.functional.normalize(vectors.detach().float().cpu(), dim=-1)
    table: dict[str, tuple[str, ...]] = {}
    for start in range(0, len(asked), QUERY_CHUNK):
        chunk = asked[start:start + QUERY_CHUNK]
        rows = torch.tensor([index[word] for word in chunk])
        similarity = unit[rows] @ unit.T
        similarity[torch.arange(len(chunk)), rows] = -torch.inf  # a word is not its own synonym
        top = similarity.topk(min(k, len(words) - 1), dim=-1)
        for word, values, ids in zip(chunk, top.values.tolist(), top.indices.tolist()):
            found = tuple(words[j] for value, j in zip(values, ids) if value >= min_similarity)
            if found:
                table[word] = found
    return table


def embedding_synonyms(queries: Iterable[str], tokenizer: PreTrainedTokenizerBase, embeddings: torch.Tensor,
                       k: int, min_similarity: float) -> dict[str, tuple[str, ...]]:
    """Synonyms of the `queries` (the words of the training texts) among the whole words of the
    vocabulary (`whole_words`), from `embeddings`, the model's input-embedding matrix (one row per token id)."""
    vocabulary = whole_words(tokenizer)
    words = list(vocabulary)
    rows = embeddings[list(vocabulary.values())]
    return nearest_words(rows, words, queries, k, min_similarity)


def read_synonyms(path: str) -> dict[str, tuple[str, ...]]:
    """`data.augment.synonyms_file`: a JSON object that lists each word's synonyms, `{"word": ["synonym", ...]}`.

    Words are looked up in lowercase; synonyms are written as given (a phrase may be one). A word's
    synonyms are those listed under it: nothing is made symmetric.

    Raises:
        DataError: the file cannot be read, is not such an object, or an entry is not a list of texts.
    """
    where = f"data.augment.synonyms_file={path}"
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{where} could not be read: {exc}",
                        hint='give a JSON file of the form {"word": ["synonym", ...]}') from exc
    if not isinstance(data, dict):
        raise DataError(f"{where} holds a JSON {type(data).__name__}, not an object of words",
                        hint='write it as {"word": ["synonym", ...], ...}')
    table: dict[str, tuple[str, ...]] = {}
    for word, synonyms in data.items():
        if not isinstance(synonyms, list) or not all(isinstance(s, str) and s.strip() for s in synonyms):
            raise DataError(f"{where}: the entry for {word!r} is {json.dumps(synonyms)[:60]}, not a list of texts",
                            hint=f'write it as "{word}": ["synonym", ...]')
        key = word.strip().lower()
        table[key] = merged(table.get(key, ()), [s.strip() for s in synonyms if s.strip().lower() != key])
    return table


def merged(*lists: Iterable[str]) -> tuple[str, ...]:
    """The synonyms of several lists, each once, in the order first given."""
    return tuple(dict.fromkeys(word for found in lists for word in found))


def merge_tables(*tables: SynonymTable) -> dict[str, tuple[str, ...]]:
    """One table of several: each word's synonyms from every table, the first table's first."""
    words = dict.fromkeys(word for table in tables for word in table)
    return {word: merged(*(table.get(word, ()) for table in tables)) for word in words}
