"""Tests of ftcli.tasks.seq2seq and the ROUGE and BLEU metric modules, with hand-computed values."""

from __future__ import annotations

import pytest

from ftcli.config.schema import DataConfig, GenerationConfig
from ftcli.errors import DataError
from ftcli.tasks import TASKS
from ftcli.tasks.metrics import load_metric
from ftcli.tasks.notes import NOTE
from ftcli.tasks.seq2seq import Seq2SeqConfig

TASK = TASKS.get("summarization").impl


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def test_encode_adds_the_prefix_and_the_target_ids(tokenizer):
    rows = [{"text": "a long story", "summary": "short"}]
    cfg = Seq2SeqConfig(target_column="summary", source_prefix="summarize: ")
    [feature] = TASK.bind(cfg, DataConfig(), [], tokenizer).encode(rows, "x.jsonl")
    assert feature["input_ids"] == tokenizer("summarize: a long story")["input_ids"]
    assert feature["labels"] == tokenizer(text_target="short")["input_ids"][1:]  # no leading [CLS]
    assert tokenizer.decode(feature["labels"]) == "short [SEP]"
    assert feature["reference"] == "short" and "token_type_ids" not in feature


def test_predict_rows_need_no_target(tokenizer):
    [feature] = TASK.bind(Seq2SeqConfig(), DataConfig(), [], tokenizer).encode([{"text": "a story"}], "x", with_labels=False)
    assert "labels" not in feature


def test_sources_cut_or_empty_are_noted_without_the_prefix(tokenizer):
    rows = [{"text": "a b c"}, {"text": "a b c d e f g h"}, {"text": " "}]
    cfg = Seq2SeqConfig(max_length=9, source_prefix="summarize: ")  # the prefix and [CLS]/[SEP] take 6 tokens
    features = TASK.bind(cfg, DataConfig(), [], tokenizer).encode(rows, "x", with_labels=False)
    assert [(f[NOTE].cut, f[NOTE].empty) for f in features] == [(False, False), (True, False), (False, True)]


def test_missing_or_non_text_target_names_the_record(tokenizer):
    with pytest.raises(DataError, match="summary"):
        TASK.bind(Seq2SeqConfig(target_column="summary"), DataConfig(), [], tokenizer).encode([{"text": "a"}], "x.jsonl")
    with pytest.raises(DataError, match=r"record 1: 'target' is int, not text"):
        TASK.bind(Seq2SeqConfig(), DataConfig(), [], tokenizer).encode(
            [{"text": "a", "target": "b"}, {"text": "c", "target": 3}], "x.jsonl"
        )


def test_collator_pads_labels_with_ignore_index(tokenizer):
    rows = [{"text": "one", "target": "a b c d"}, {"text": "two words", "target": "e"}]
    task = TASK.bind(Seq2SeqConfig(), DataConfig(), [], tokenizer)
    features = task.encode(rows, "x")
    batch = task.collator()(features)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["labels"].shape[0] == 2 and (batch["labels"][1] == -100).sum() == len(features[0]["labels"]) - len(
        features[1]["labels"]
    )


def test_generation_starts_from_the_sources_without_their_targets(tokenizer):
    task = TASK.bind(Seq2SeqConfig(), DataConfig(), [], tokenizer)
    features = task.encode([{"text": "one story", "target": "a"}], "x")
    [prompt] = task.prompts(features)
    assert set(prompt) == {"input_ids", "attention_mask"} and prompt["input_ids"] == features[0]["input_ids"]
    batch = task.prompt_collator()(task.prompts(features))
    assert {k for k, v in batch.items() if v is not None} == {"input_ids", "attention_mask"}


def test_generation_settings_reach_generate():
    assert GenerationConfig().as_kwargs() == {"num_beams": 1, "max_new_tokens": 64, "do_sample": False}
    assert GenerationConfig(num_beams=4, no_repeat_ngram_size=3, repetition_penalty=1.2).as_kwargs() == {
        "num_beams": 4, "max_new_tokens": 64, "do_sample": False, "length_penalty": 1.0, "early_stopping": True,
        "no_repeat_ngram_size": 3, "repetition_penalty": 1.2,
    }
    assert GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9).as_kwargs() == {
        "num_beams": 1, "max_new_tokens": 64, "do_sample": True, "temperature": 0.7, "top_p": 0.9,
    }
    assert len(GenerationConfig(num_beams=0, max_new_tokens=0).validate()) == 2
    assert len(GenerationConfig(temperature=0, top_p=1.5, repetition_penalty=0).validate()) == 3


def test_headline_metrics():
    assert TASKS.get("summarization").impl.best_metric(Seq2SeqConfig()) == "rougeL"
    assert TASKS.get("translation").impl.best_metric(Seq2SeqConfig()) == "bleu"


def test_rouge_by_hand():
    # prediction "the cat sat" against "the cat sat on the mat":
    # unigrams: 3 of 3 predicted are in the reference, 3 of its 6 are predicted -> P 1, R 1/2, F 2/3
    # bigrams: "the cat", "cat sat" both match; the reference has 5 -> P 1, R 2/5, F 4/7
    # longest common subsequence: 3 tokens -> the same as unigrams, F 2/3
    scores = load_metric("rouge").compute(predictions=["the cat sat"], references=["the cat sat on the mat"])
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(4 / 7)
    assert scores["rougeL"] == pytest.approx(2 / 3) and scores["rougeLsum"] == pytest.approx(2 / 3)


def test_rouge_averages_over_examples_and_stems():
    scores = load_metric("rouge").compute(predictions=["cats running", "x"], references=["cat runs", "y"])
    assert scores["rouge1"] == pytest.approx(0.5)  # stemmed: a perfect first pair, a miss second


def test_bleu_and_chrf_bounds():
    same = load_metric("bleu").compute(predictions=["le chat est sur le tapis ."],
                                       references=["le chat est sur le tapis ."])
    assert same["bleu"] == pytest.approx(100.0) and same["chrf"] == pytest.approx(100.0)
    different = load_metric("bleu").compute(predictions=["xyz qqq"], references=["le chat est sur le tapis ."])
    assert different["bleu"] == pytest.approx(0.0) and different["chrf"] < 5


def test_tiny_t5_ends_targets_where_the_tokenizer_does(tokenizer):
    from ftcli.models.tiny import tiny_config

    config = tiny_config("t5")
    assert config.eos_token_id == tokenizer.sep_token_id and config.decoder_start_token_id == tokenizer.pad_token_id
