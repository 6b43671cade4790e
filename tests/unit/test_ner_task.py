"""Tests of ftcli.tasks.ner: label sets, encoding with sub-token alignment, bad rows, metrics, predictions."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ftcli.config.schema import DataConfig
from ftcli.data.splits import Splits
from ftcli.engine.inference import Outputs
from ftcli.engine.step import IGNORE_INDEX as IGNORE
from ftcli.errors import ConfigError, DataError
from ftcli.tasks import TASKS
from ftcli.tasks.ner import ALIGNMENT, NerConfig, TokenClassification
from ftcli.tasks.notes import NOTE, RowNote
from ftcli.tasks.tag_schemes import TagScheme

TASK = TokenClassification()
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
O, B_LOC, I_LOC, B_PER, I_PER = range(5)
WORDS = ["Ada", "Lovelace", "visited", "Zürich", "."]
TEXT = "Ada Lovelace visited Zürich."
# The embedded tokenizer: [CLS] ada love ##lace visited zurich . [SEP]
FIRST_TOKENS = [1, 2, 4, 5, 6]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def bound(tokenizer=None, task=None, data=None, labels=LABELS):
    return TASK.bind(task or NerConfig(), data or DataConfig(), labels, tokenizer)


def encode(rows, tokenizer, task=None, data=None, labels=LABELS, **kwargs):
    return bound(tokenizer, task, data, labels).encode(rows, "f.jsonl", **kwargs)


def metrics(logits, features):
    return bound().metrics(logits, features)


def predict(logits, features):
    return bound().predictions(Outputs(logits, None), features)


def label_names(rows, task=None, data=None):
    return TASK.label_names(Splits({"train": rows}, {"train": "train.jsonl"}), task or NerConfig(), data or DataConfig())


def logits_for(n_tokens: int, labels_at: dict[int, int]) -> np.ndarray:
    """Logits that make `labels_at[position]` the clear winner there, and O everywhere else."""
    logits = np.zeros((n_tokens, len(LABELS)), dtype=np.float32)
    for position in range(n_tokens):
        logits[position, labels_at.get(position, O)] = 10.0
    return logits


def test_registered_with_its_schema_and_head():
    entry = TASKS.get("ner")
    assert entry.config_cls is NerConfig and isinstance(entry.impl, TokenClassification)
    assert TASK.model_class().__name__ == "AutoModelForTokenClassification"
    assert TASK.best_metric(NerConfig()) == "f1"


def test_config_rejects_one_column_for_both():
    assert NerConfig(tags_column="tokens").validate() == ["task.tokens_column and task.tags_column are both 'tokens'"]


def test_label_set_from_training_data_is_iob2():
    rows = [{"tokens": ["a", "b"], "tags": ["I-PER", "I-PER"]}, {"tokens": ["c"], "tags": ["S-LOC"]}]
    assert label_names(rows) == LABELS


def test_label_set_from_configured_names():
    data = DataConfig(label_names=["O", "S-PER", "B-PER", "E-PER", "I-PER"])
    assert label_names([], data=data) == ["O", "B-PER", "I-PER"]


def test_configured_names_that_are_not_tags():
    with pytest.raises(ConfigError, match="data.label_names item 1: 'PER' is not an entity tag"):
        label_names([], data=DataConfig(label_names=["O", "PER"]))


def test_labels_go_to_the_first_sub_token(tokenizer):
    feature = encode([{"tokens": WORDS, "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"]}], tokenizer)[0]
    assert tokenizer.convert_ids_to_tokens(feature["input_ids"]) == [
        "[CLS]", "ada", "love", "##lace", "visited", "zurich", ".", "[SEP]",
    ]
    assert feature["labels"] == [IGNORE, B_PER, I_PER, IGNORE, O, B_LOC, O, IGNORE]
    assert feature[ALIGNMENT].first_tokens == FIRST_TOKENS
    assert feature[ALIGNMENT].gold == ["B-PER", "I-PER", "O", "B-LOC", "O"]


def test_label_all_subtokens_continues_a_begin_tag(tokenizer):
    rows = [{"tokens": ["Lovelace", "sang"], "tags": ["B-PER", "O"]}]
    feature = encode(rows, tokenizer, NerConfig(label_all_subtokens=True))[0]
    assert feature["labels"] == [IGNORE, B_PER, I_PER, O, IGNORE]  # love (B-PER), ##lace (I-PER), sang


def test_tags_in_other_schemes_are_learnt_as_iob2(tokenizer, caplog):
    rows = [{"tokens": WORDS, "tags": ["B-PER", "E-PER", "O", "S-LOC", "O"]}]
    with caplog.at_level(logging.INFO, logger="ftcli.tasks.ner"):
        feature = encode(rows, tokenizer)[0]
    assert feature[ALIGNMENT].gold == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert "f.jsonl: the tags are IOBES; they are read as IOB2" in caplog.text


def test_integer_tags_index_configured_names(tokenizer):
    data = DataConfig(label_names=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    feature = encode([{"tokens": WORDS, "tags": [1, 2, 0, 3, 0]}], tokenizer, data=data)[0]
    assert feature[ALIGNMENT].gold == ["B-PER", "I-PER", "O", "B-LOC", "O"]


def test_custom_columns(tokenizer):
    task = NerConfig(tokens_column="words", tags_column="ner")
    feature = encode([{"words": ["Ada"], "ner": ["B-PER"]}], tokenizer, task)[0]
    assert feature["labels"] == [IGNORE, B_PER, IGNORE]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"tokens": ["a", "b", "c"], "tags": ["O", "O"]}, "f.jsonl: record 1 has 3 tokens but 2 tags"),
        ({"tokens": ["a", "b"], "tags": ["O", "B-ORG"]},
         "f.jsonl: record 1, token 1: tag 'B-ORG' is not in the label set ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER']"),
        ({"tokens": ["a", "b"], "tags": ["O", "S-ORG"]},
         "f.jsonl: record 1, token 1: tag 'S-ORG' (IOB2 'B-ORG') is not in the label set"),
        ({"tokens": ["a", "b", "c"], "tags": ["O", "B-PER", "X-PER"]}, "f.jsonl: record 1, token 2: 'X-PER' is not an entity tag"),
        ({"tokens": "a b", "tags": ["O", "O"]}, "f.jsonl: record 1: 'tokens' is str, not a list of tokens"),
        ({"tokens": ["a", 7], "tags": ["O", "O"]}, "f.jsonl: record 1: token 1 of 'tokens' is int, not text"),
        ({"tokens": ["a"], "tags": "O"}, "f.jsonl: record 1: 'tags' is str, not a list of tags"),
        ({"tokens": ["a"], "tags": [3]}, "f.jsonl: record 1, token 0: tag 3 is an integer, and data.label_names is not set"),
        ({"tokens": ["a"], "tags": [None]}, "f.jsonl: record 1, token 0: tag None is NoneType, not a tag"),
    ],
)
def test_bad_rows_name_the_file_record_and_token(tokenizer, row, message):
    good = {"tokens": ["Ada"], "tags": ["B-PER"]}
    with pytest.raises(DataError) as info:
        encode([good, row], tokenizer)
    assert info.value.message.startswith(message)
    assert info.value.hint


def test_missing_tags_column_lists_the_columns(tokenizer):
    with pytest.raises(DataError) as info:
        encode([{"tokens": ["a"], "ner_tags": ["O"]}], tokenizer)
    assert info.value.message == "task.tags_column='tags' is not a column of f.jsonl; columns found: tokens, ner_tags"
    assert info.value.hint == "set task.tags_column=<one of those>"


def test_wrong_scheme_setting_is_a_data_error(tokenizer):
    with pytest.raises(DataError, match=r"record 0, token 0: 'S-PER' is not a tag of the IOB2 scheme"):
        encode([{"tokens": ["Ada"], "tags": ["S-PER"]}], tokenizer, NerConfig(scheme=TagScheme.iob2))


def test_integer_tag_out_of_range(tokenizer):
    with pytest.raises(DataError, match="tag 5 is out of range for data.label_names \\(3 names\\)"):
        encode([{"tokens": ["a"], "tags": [5]}], tokenizer, data=DataConfig(label_names=["O", "B-PER", "I-PER"]))


def test_predict_rows_need_tokens_or_text(tokenizer):
    with pytest.raises(DataError, match="record 0 has no 'tokens' \\(task.tokens_column\\) or 'text' \\(data.text_column\\) field"):
        encode([{"sentence": "a"}], tokenizer, with_labels=False)
    with pytest.raises(DataError, match="record 0: 'tokens' is str, not a list of tokens"):
        encode([{"tokens": "Ada sang"}], tokenizer, with_labels=False)


def test_collator_pads_labels_and_leaves_the_alignment_out(tokenizer):
    features = encode([{"tokens": WORDS, "tags": ["O"] * 5}, {"tokens": ["a"], "tags": ["O"]}], tokenizer)
    batch = bound(tokenizer).collator()(features)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert batch["labels"][1].tolist() == [IGNORE, O, IGNORE] + [IGNORE] * 5


def test_metrics_read_each_word_at_its_first_sub_token(tokenizer):
    features = encode([{"tokens": WORDS, "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"]}], tokenizer)
    # the second sub-token of "Lovelace" (position 3) says B-LOC: ignored, so both entities are found
    logits = [logits_for(8, {1: B_PER, 2: I_PER, 3: B_LOC, 5: B_LOC})]
    result = metrics(logits, features)
    assert (result["precision"], result["recall"], result["f1"], result["token_accuracy"]) == (1.0, 1.0, 1.0, 1.0)
    # "Zürich" predicted O: 1 of 2 gold entities found, nothing wrong predicted -> P = 1, R = 1/2, F1 = 2/3
    result = metrics([logits_for(8, {1: B_PER, 2: I_PER})], features)
    assert (result["precision"], result["recall"]) == (1.0, 0.5)
    assert result["f1"] == pytest.approx(2 / 3)
    assert set(result["per_type"]) == {"LOC", "PER"}


def test_words_cut_off_by_truncation_count_as_outside(tokenizer):
    # max_length 4 keeps [CLS] ada love [SEP]: "visited", "Zürich" and "." are cut off
    features = encode([{"tokens": WORDS, "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"]}], tokenizer, NerConfig(max_length=4))
    assert features[0][ALIGNMENT].first_tokens == [1, 2, None, None, None]
    result = metrics([logits_for(4, {1: B_PER, 2: I_PER})], features)
    assert (result["precision"], result["recall"]) == (1.0, 0.5)  # the LOC entity was lost


def test_predictions_for_raw_text_give_character_spans(tokenizer):
    features = encode([{"text": TEXT}], tokenizer, with_labels=False)
    # "Ada" says I-PER (repaired to B-PER), "love" I-PER, "##lace" B-LOC (not a first sub-token: ignored)
    logits = [logits_for(8, {1: I_PER, 2: I_PER, 3: B_LOC, 5: B_LOC})]
    [prediction] = predict(logits, features)
    assert set(prediction) == {"entities"}
    entities = prediction["entities"]
    assert [(e["text"], e["type"], e["start"], e["end"]) for e in entities] == [
        ("Ada Lovelace", "PER", 0, 12), ("Zürich", "LOC", 21, 27),
    ]
    assert all(TEXT[e["start"]:e["end"]] == e["text"] for e in entities)
    assert all(0.99 < e["score"] <= 1.0 for e in entities)


def test_predictions_for_words_give_one_tag_per_word(tokenizer):
    features = encode([{"tokens": WORDS}], tokenizer, with_labels=False)
    [prediction] = predict([logits_for(8, {1: B_PER, 2: I_PER, 5: I_LOC})], features)
    assert prediction["tags"] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert [(e["text"], e["type"], e["start"], e["end"]) for e in prediction["entities"]] == [
        ("Ada Lovelace", "PER", 0, 2), ("Zürich", "LOC", 3, 4),
    ]


def test_prediction_scores_average_the_word_probabilities(tokenizer):
    features = encode([{"tokens": ["Ada", "Lovelace"]}], tokenizer, with_labels=False)
    logits = np.zeros((4, len(LABELS)), dtype=np.float32)
    logits[1, B_PER] = np.log(3.0)  # p(B-PER) = 3 / (3 + 4) = 3/7 at "ada"
    logits[2, I_PER] = np.log(7.0)  # p(I-PER) = 7 / (7 + 4) = 7/11 at "love"
    [prediction] = predict([logits], features)
    assert prediction["entities"][0]["score"] == pytest.approx((3 / 7 + 7 / 11) / 2, abs=1e-6)


def test_predictions_for_mixed_rows_keep_row_order(tokenizer):
    features = encode([{"tokens": ["Ada"]}, {"text": "Ada"}, {"tokens": ["Ada", "sang"]}], tokenizer, with_labels=False)
    logits = [logits_for(3, {1: B_PER}), logits_for(3, {1: B_PER}), logits_for(4, {1: B_PER})]
    predictions = predict(logits, features)
    assert [p.get("tags") for p in predictions] == [["B-PER"], None, ["B-PER", "O"]]
    assert predictions[1]["entities"][0]["text"] == "Ada"


def test_truncated_input_still_gets_a_tag_per_word(tokenizer):
    features = encode([{"tokens": WORDS}], tokenizer, NerConfig(max_length=4), with_labels=False)
    [prediction] = predict([logits_for(4, {1: B_PER, 2: I_PER})], features)
    assert prediction["tags"] == ["B-PER", "I-PER", "O", "O", "O"]
    assert features[0][NOTE] == RowNote(0, cut=True)


def test_rows_without_words_or_text_are_noted_empty(tokenizer):
    rows = [{"tokens": []}, {"tokens": ["Ada"]}, {"text": "  "}, {"text": "Ada sang"}]
    features = encode(rows, tokenizer, with_labels=False)
    assert [f[NOTE].empty for f in features] == [True, False, True, False]
    assert "row_note" not in bound(tokenizer).collator()(features)


def test_raw_text_truncation_is_noticed(tokenizer):
    features = encode([{"text": "one two three four five"}], tokenizer, NerConfig(max_length=4), with_labels=False)
    assert features[0][ALIGNMENT].truncated and features[0][ALIGNMENT].words == ["one", "two"]


class SlowTokenizer:
    """What matters of a tokenizer that `tokenizers` does not back: it is not fast."""

    is_fast = False


@pytest.mark.parametrize(("name", "needed_for"), [
    ("ner", "to map sub-tokens to words"), ("qa", "for character offsets and context windows"),
])
def test_tasks_that_read_word_ids_or_offsets_refuse_a_slow_tokenizer(name, needed_for):
    from ftcli.errors import ModelError

    entry = TASKS.get(name)
    task = entry.impl.bind(entry.config_cls(), DataConfig(), LABELS, SlowTokenizer())
    with pytest.raises(ModelError) as info:
        task.encode([{"tokens": ["Ada"], "question": "Who?", "context": "Ada."}], "f.jsonl", with_labels=False)
    assert info.value.message == (
        f"task={name} needs a fast tokenizer (one backed by the `tokenizers` library) {needed_for}; "
        "SlowTokenizer is not one"
    )
    assert info.value.hint == "pick a model that ships a tokenizer.json"
