"""Synonym sources (`ftcli.data.synonyms`): embedding neighbours in closed form, whole words of a
vocabulary, the user's file."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ftcli.data import synonyms as synonyms_module
from ftcli.data.synonyms import (
    STOPWORDS,
    embedding_synonyms,
    merge_tables,
    nearest_words,
    read_synonyms,
    whole_words,
)
from ftcli.errors import DataError


def at(degrees: float, length: float = 1.0) -> list[float]:
    return [length * math.cos(math.radians(degrees)), length * math.sin(math.radians(degrees))]


# unit-free directions in the plane: the cosine of two words is the cosine of the angle between them,
# whatever their lengths (w3 is ten times longer, and would win a dot product)
WORDS = ["w0", "w10", "w30", "w90", "w180"]
VECTORS = torch.tensor([at(0), at(10, 0.5), at(30, 2.0), at(90, 10.0), at(180)])


def test_neighbours_of_a_hand_built_matrix_are_the_closed_form_nearest():
    table = nearest_words(VECTORS, WORDS, ["w0", "w90", "w180", "unknown"], k=2, min_similarity=-1.0)
    assert table == {"w0": ("w10", "w30"), "w90": ("w30", "w10"), "w180": ("w90", "w30")}
    # cos 10° = 0.985, cos 30° = 0.866: a floor between them keeps only the nearer
    assert nearest_words(VECTORS, WORDS, ["w0"], k=4, min_similarity=0.9) == {"w0": ("w10",)}
    assert nearest_words(VECTORS, WORDS, ["w0"], k=4, min_similarity=math.cos(math.radians(30)) - 1e-6) == \
        {"w0": ("w10", "w30")}
    assert nearest_words(VECTORS, WORDS, ["w180"], k=3, min_similarity=0.5) == {}  # nothing near enough


def test_neighbours_are_the_same_in_chunks(monkeypatch):
    torch.manual_seed(0)
    vectors = torch.randn(40, 8)
    words = [f"w{i}" for i in range(40)]
    whole = nearest_words(vectors, words, words, k=3, min_similarity=-1.0)
    monkeypatch.setattr(synonyms_module, "QUERY_CHUNK", 7)
    assert nearest_words(vectors, words, words, k=3, min_similarity=-1.0) == whole
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-2)
    assert whole["w5"] == tuple(words[j] for j in similarity[5].topk(3).indices.tolist())


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def test_whole_words_of_a_wordpiece_vocabulary(tokenizer):
    words = whole_words(tokenizer)
    vocab = tokenizer.get_vocab()
    assert words["movie"] == vocab["movie"] and words["film"] == vocab["film"]
    assert "the" not in words and "##ing" in vocab and not any(w.startswith("#") for w in words)
    assert all(w.isalpha() and len(w) > 1 and w == w.lower() and w not in STOPWORDS for w in words)
    assert all(tokenizer.convert_ids_to_tokens(i) == w for w, i in words.items())


def test_whole_words_of_a_byte_level_vocabulary_are_the_word_start_entries():
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["the dog saw a dog", "dogs and cats", "a cat sat", "catalog dogma"] * 5,
                            vocab_size=300, min_frequency=1, show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer)
    vocab = tokenizer.get_vocab()
    assert {"dog", "Ġdog", "catalog"} <= set(vocab)  # "dog" also as the tail of a word, "catalog" only at the start
    words = whole_words(tokenizer)
    assert words["dog"] == vocab["Ġdog"] and words["cat"] == vocab["Ġcat"] and "catalog" not in words
    assert {tokenizer.convert_ids_to_tokens(i) for i in words.values()} <= {t for t in vocab if t.startswith("Ġ")}


def test_embedding_synonyms_read_the_models_own_rows(tokenizer):
    vocab = tokenizer.get_vocab()
    embeddings = torch.zeros(len(vocab), 2)  # a zero row is similar to nothing
    for word, degrees in {"movie": 0, "film": 5, "cinema": 20, "picture": 50, "car": 90}.items():
        embeddings[vocab[word]] = torch.tensor(at(degrees, 3.0))
    table = embedding_synonyms(["movie", "car", "zzz"], tokenizer, embeddings, k=5, min_similarity=0.5)
    assert table == {"movie": ("film", "cinema", "picture"), "car": ("picture",)}  # cos 40° = 0.77; cos 70° = 0.34


def test_a_synonyms_file_is_read_in_lowercase_and_merged_in_order(tmp_path):
    path = tmp_path / "synonyms.json"
    path.write_text(json.dumps({"Movie": ["film", "movie"], "movie": ["picture"], "good": [" fine "]}))
    table = read_synonyms(str(path))
    assert table == {"movie": ("film", "picture"), "good": ("fine",)}
    assert merge_tables(table, {"movie": ("cinema", "film"), "car": ("auto",)}) == \
        {"movie": ("film", "picture", "cinema"), "good": ("fine",), "car": ("auto",)}


@pytest.mark.parametrize(("content", "problem"), [
    ("[1, 2]", "holds a JSON list, not an object of words"),
    ('{"movie": "film"}', "the entry for 'movie'"),
    ('{"movie": ["film", ""]}', "the entry for 'movie'"),
    ("{not json", "could not be read"),
])
def test_a_synonyms_file_that_is_not_a_table_is_refused(tmp_path, content, problem):
    path = tmp_path / "synonyms.json"
    path.write_text(content)
    with pytest.raises(DataError, match="data.augment.synonyms_file=") as error:
        read_synonyms(str(path))
    assert problem in error.value.message
