"""`task=prompt_based`: label words scored by a language model's own head, and the loss on them.

Each kind of model is checked against a second way of computing the same scores: a causal LM's
loss against the cross-entropy of word log-likelihoods summed by hand, one sequence at a time; an
encoder-decoder's scores against `task=prompting`'s scorer; a masked LM's against its own logits
at the mask of the whole text read in one piece.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM, BertModel

from ftcli.config.schema import DataConfig, ModelConfig
from ftcli.data.splits import Splits
from ftcli.engine.word_scores import word_log_likelihoods
from ftcli.errors import ConfigError, ModelError
from ftcli.models.label_word_auto import AutoModelForLabelWords
from ftcli.models.language_models import LanguageModel
from ftcli.models.loading import build_tokenizer
from ftcli.models.tiny import tiny_config
from ftcli.tasks import TASKS
from ftcli.tasks.label_prompts import MASK_INDEX, Score, contexts
from ftcli.tasks.prompt_based import PromptBasedConfig

KIND = TASKS.get("prompt_based").impl
LABELS = ["neg", "pos"]
ROWS = [{"text": "a good film with a fine cast", "label": "pos"}, {"text": "bad", "label": "neg"},
        {"text": "the soup was cold", "label": "neg"}]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(ModelConfig("tiny:gpt2"))  # the embedded MiniLM's, as every tiny model's


def _no_autocast():
    return torch.autocast("cpu", enabled=False)


def tiny(auto, arch: str):
    torch.manual_seed(0)
    return auto.from_config(tiny_config(arch)).eval()


def bound(tokenizer, **settings):
    return KIND.bind(PromptBasedConfig(**settings), DataConfig(), LABELS, tokenizer)


def one_sequence(model, context: list[int], word: list[int]) -> float:
    """log P(word | context), the context and the word read as one unpadded sequence."""
    with torch.no_grad():
        log_probs = torch.log_softmax(model(input_ids=torch.tensor([context + word])).logits[0], -1)
    return sum(log_probs[len(context) - 1 + j, token].item() for j, token in enumerate(word))


@pytest.mark.parametrize("words", [{"neg": " bad", "pos": " good"}, {"neg": " unremarkable", "pos": " great"}])
def test_causal_loss_is_the_cross_entropy_over_label_word_log_likelihoods(tokenizer, words):
    model = tiny(AutoModelForCausalLM, "gpt2")
    ids = [tokenizer(words[label], add_special_tokens=False)["input_ids"] for label in LABELS]
    prompts = [tokenizer(f"{row['text']} =", add_special_tokens=False)["input_ids"] for row in ROWS]
    likelihoods = [[one_sequence(model, prompt, word) for word in ids] for prompt in prompts]
    for score in Score:
        task = bound(tokenizer, template="{text} =", label_words=words, score=score, lm=LanguageModel.causal)
        batch = task.collator()(task.encode(ROWS, "rows"))  # left-padded: the rows differ in length
        step = task.training_step()
        step.prepare(None, model)
        with torch.no_grad():
            loss = step.loss(model, batch).item()
            _, (scores,) = step.scores(model, batch)
        by_hand = [[v / (len(word) if score is Score.mean else 1) for v, word in zip(row, ids)] for row in likelihoods]
        entropies = [math.log(sum(math.exp(v) for v in row)) - row[LABELS.index(r["label"])]
                     for row, r in zip(by_hand, ROWS)]
        assert loss == pytest.approx(sum(entropies) / len(ROWS), abs=1e-5)
        np.testing.assert_allclose(scores.logits.numpy(), by_hand, atol=1e-5)
        assert scores.targets.tolist() == [1, 0, 0]


def test_seq2seq_scores_equal_the_prompting_scorer(tokenizer):
    model = tiny(AutoModelForSeq2SeqLM, "t5")
    words = {"neg": " unremarkable", "pos": " great"}
    task = bound(tokenizer, template="Review: {text}", label_words=words, lm=LanguageModel.seq2seq)
    features = task.encode(ROWS, "rows")
    got = task.outputs(model, features, batch_size=2, autocast=_no_autocast)
    read = [c.ids for c in contexts(tokenizer, [f"Review: {r['text']}" for r in ROWS], LanguageModel.seq2seq, 256)]
    ids = [tokenizer(words[label], add_special_tokens=False)["input_ids"] for label in LABELS]
    np.testing.assert_allclose(got.logits, word_log_likelihoods(model, read, ids, 1), atol=1e-4)


def test_masked_lm_scores_are_its_head_logits_at_the_mask(tokenizer):
    model = tiny(AutoModelForMaskedLM, "bert")
    words = {"neg": " bad", "pos": " good"}
    task = bound(tokenizer, template="{text} It was {mask}.", label_words=words, lm=LanguageModel.masked)
    features = task.encode(ROWS, "rows")
    outputs = task.outputs(model, features, batch_size=2, autocast=_no_autocast)
    word_ids = [tokenizer(words[label], add_special_tokens=False)["input_ids"][0] for label in LABELS]
    for row, feature, scores, predicted in zip(ROWS, features, outputs.logits, task.predictions(outputs, features)):
        whole = tokenizer(f"{row['text']} It was {tokenizer.mask_token}.")["input_ids"]
        assert feature["input_ids"] == whole and whole[feature[MASK_INDEX]] == tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([whole])).logits[0, feature[MASK_INDEX], word_ids]
        np.testing.assert_allclose(scores, logits.numpy(), atol=1e-5)
        assert predicted["label"] == LABELS[int(logits.argmax())]


def test_a_long_masked_prompt_loses_its_start_and_keeps_its_mask(tokenizer):
    task = bound(tokenizer, template="{text} It was {mask}.", lm=LanguageModel.masked, max_length=8)
    (feature,) = task.encode([{"text": "one two three four five six", "label": "pos"}], "rows")
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "five", "six", "it", "was", "[MASK]", ".", "[SEP]"]  # 8: [CLS], 5 of room, [SEP]
    assert feature[MASK_INDEX] == 5 and feature["row_note"].cut


def test_a_checkpoint_without_a_masked_lm_head_gets_one_tied_to_its_embeddings(tmp_path, capsys):
    torch.manual_seed(0)
    encoder = BertModel(tiny_config("bert"))
    encoder.save_pretrained(tmp_path / "encoder")
    model = AutoModelForLabelWords.from_pretrained(tmp_path / "encoder")
    assert "holds no masked-LM head" in capsys.readouterr().out
    head = model.cls.predictions
    assert torch.equal(head.transform.dense.weight, torch.eye(32)) and not head.transform.dense.bias.any()
    assert torch.equal(head.transform.LayerNorm.weight, torch.ones(32)) and not head.transform.LayerNorm.bias.any()
    assert not head.bias.any() and head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)

    with torch.no_grad():  # a checkpoint with its head keeps it as it is
        model.cls.predictions.transform.dense.weight.mul_(2.0)
    model.save_pretrained(tmp_path / "masked")
    again = AutoModelForLabelWords.from_pretrained(tmp_path / "masked")
    assert "masked-LM head" not in capsys.readouterr().out
    assert torch.equal(again.cls.predictions.transform.dense.weight, 2 * torch.eye(32))


def test_a_missing_head_that_cannot_start_from_the_embeddings_is_refused(tmp_path):
    BertModel(tiny_config("bert", tie_word_embeddings=False)).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="cls.predictions.decoder.weight .* not tied to its input embeddings"):
        AutoModelForLabelWords.from_pretrained(tmp_path)


@pytest.mark.parametrize(("arch", "kind", "auto"), [
    ("gpt2", LanguageModel.causal, "GPT2LMHeadModel"), ("llama", LanguageModel.causal, "LlamaForCausalLM"),
    ("t5", LanguageModel.seq2seq, "T5ForConditionalGeneration"), ("bert", LanguageModel.masked, "BertForMaskedLM"),
])
def test_the_model_decides_task_lm(arch, kind, auto):
    assert PromptBasedConfig().for_model(tiny_config(arch)).lm is kind
    assert type(AutoModelForLabelWords.from_config(tiny_config(arch))).__name__ == auto


@pytest.mark.parametrize(("settings", "arch", "message"), [
    ({"lm": LanguageModel.masked}, "gpt2", "task.lm=masked, but this gpt2 model is a causal language model"),
    ({"template": "{text} It was {mask}."}, "gpt2", r"goes on after \{mask\} \('.'\), and a causal language model"),
    ({"template": "{text} It was {mask}."}, "t5", "and a seq2seq language model scores it at the end"),
])
def test_what_the_model_cannot_score_is_refused(settings, arch, message):
    with pytest.raises(ConfigError, match=message):
        PromptBasedConfig(**settings).for_model(tiny_config(arch))
    assert PromptBasedConfig(template="{text} It was {mask}.").for_model(tiny_config("bert")).lm is LanguageModel.masked


def test_label_words_of_no_label_and_words_no_model_tells_apart_are_refused(tokenizer):
    splits = Splits()
    splits.rows["train"], splits.sources["train"] = ROWS, "train.jsonl"
    assert KIND.label_names(splits, PromptBasedConfig(), DataConfig()) == LABELS
    with pytest.raises(ConfigError, match="a word for 'positive', which is not a label; the labels are: neg, pos"):
        KIND.label_names(splits, PromptBasedConfig(label_words={"positive": " good"}), DataConfig())
    same_start = {"neg": " unremarkable", "pos": " unreal"}  # un ##rem ..., un ##real
    with pytest.raises(ConfigError, match=r"'neg' and 'pos' have words with the same first token \(\['un'\]\)"):
        bound(tokenizer, label_words=same_start, lm=LanguageModel.masked).encode(ROWS, "rows")
    assert len(bound(tokenizer, label_words=same_start, lm=LanguageModel.causal).encode(ROWS, "rows")) == 3


def test_integer_labels_index_into_data_label_names(tokenizer):
    task = KIND.bind(PromptBasedConfig(lm=LanguageModel.causal), DataConfig(label_names=LABELS), LABELS, tokenizer)
    features = task.encode([{"text": "x", "label": 1}, {"text": "y", "label": "neg"}], "rows")
    assert [f["labels"] for f in features] == [1, 0]
