"""`ftcli train task=prompt_based`: before training it predicts what `ftcli eval task=prompting` does,
training lowers its loss, and a finished run (full or LoRA) predicts the same once reloaded."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from ftcli.cli.main import main
from ftcli.config.schema import DataConfig, ModelConfig, Precision
from ftcli.data.splits import load_splits
from ftcli.models.label_word_auto import AutoModelForLabelWords
from ftcli.models.loading import build_tokenizer
from ftcli.models.tiny import tiny_config
from ftcli.tasks import TASKS
from ftcli.tasks.pipeline import row_predictions, split_scores
from ftcli.tasks.prompt_based import PromptBasedConfig

TEMPLATE = "Review: {text} Verdict:"
WORDS = {"negative": " unremarkable", "positive": " great"}  # 4 tokens and 1: each prompt read once per word
REVIEWS = [("a fine film", "positive"), ("cold soup and a rude waiter", "negative"), ("great fun", "positive"),
           ("the app keeps crashing", "negative"), ("loved every page", "positive"),
           ("dull and far too long", "negative"), ("a warm, funny book", "positive"),
           ("it broke on the first day", "negative")]


def jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    rows = [{"text": text, "label": label} for text, label in REVIEWS]
    return jsonl(folder / "train.jsonl", rows), jsonl(folder / "validation.jsonl", rows)


def test_before_training_it_predicts_what_prompting_predicts(tmp_path, files):
    folder = tmp_path / "lm"
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("gpt2")).save_pretrained(folder)
    tokenizer = build_tokenizer(ModelConfig("tiny:gpt2"))
    tokenizer.save_pretrained(folder)
    train, validation = files
    data = [f"data.train_file={train}", f"data.validation_file={validation}"]
    words = "task.label_words={negative: ' unremarkable', positive: ' great'}"
    assert main(["eval", "task=prompting", f"model.name_or_path={folder}", *data, f"task.template='{TEMPLATE}'",
                 words, f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    prompted = read(tmp_path / "e" / "predictions.jsonl")
    prompting = json.loads((tmp_path / "e" / "metrics.json").read_text())["validation"]

    model = AutoModelForLabelWords.from_pretrained(folder, dtype=torch.float32)
    cfg = PromptBasedConfig(template=TEMPLATE, label_words=WORDS).for_model(model.config)
    data_cfg = DataConfig(train_file=str(train), validation_file=str(validation))
    splits = load_splits(data_cfg, "prompt_based", 0, training=True)
    kind = TASKS.get("prompt_based").impl
    task = kind.bind(cfg, data_cfg, kind.label_names(splits, cfg, data_cfg), tokenizer)
    features = task.encode(splits["validation"], "validation")
    scores = split_scores(task, model, features, 4, Precision.fp32)
    predicted = row_predictions(task, model, features, 4, Precision.fp32)

    assert [p["label"] for p in predicted] == [row["prediction"] for row in prompted]
    assert scores["accuracy"] == prompting["accuracy"] and scores["f1_macro"] == prompting["f1_macro"]
    for row, prediction in zip(prompted, predicted):  # the probabilities are the softmax of prompting's scores
        exp = {label: torch.tensor(score).exp().item() for label, score in row["scores"].items()}
        assert prediction["probs"] == pytest.approx({k: v / sum(exp.values()) for k, v in exp.items()}, abs=1e-3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, files):
    """A full run of a tiny causal LM that learns the toy set, and a LoRA run of a tiny masked LM."""
    root = tmp_path_factory.mktemp("runs")
    train, validation = files
    data = [f"data.train_file={train}", f"data.validation_file={validation}", "trainer.batch_size=4",
            "trainer.save_every=null", "trainer.logging_steps=1", "trainer.eval_strategy=no"]
    full = ["model=tiny_gpt2", "method=full", "trainer.lr=0.01", "trainer.max_steps=12", f"task.template='{TEMPLATE}'"]
    lora = ["model=tiny_bert", "method=lora", "trainer.max_steps=2", "task.template='{text} It was {mask}.'"]
    for name, overrides in (("full", full), ("lora", lora)):
        assert main(["train", "task=prompt_based", *data, *overrides, f"hydra.run.dir={root / name}"]) == 0
    return root


def test_training_lowers_the_loss_on_a_separable_set(runs, files):
    from ftcli.models.loading import build_model

    train, validation = files
    data = DataConfig(train_file=str(train), validation_file=str(validation))
    untrained = build_model(ModelConfig("tiny:gpt2"), AutoModelForLabelWords, [])  # as the run started
    cfg = PromptBasedConfig(template=TEMPLATE).for_model(untrained.config)
    tokenizer = build_tokenizer(ModelConfig("tiny:gpt2"))
    task = TASKS.get("prompt_based").impl.bind(cfg, data, ["negative", "positive"], tokenizer)
    before = split_scores(task, untrained, task.encode(read(validation), "validation"), 8, Precision.fp32)
    after = json.loads((runs / "full" / "metrics.json").read_text())["validation"]
    assert after["loss"] < before["loss"] / 4 and after["accuracy"] == 1.0
    assert "lm: causal" in (runs / "full" / "config.yaml").read_text()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_reloaded_run_scores_and_predicts_as_it_was_trained(runs, files, method, tmp_path):
    run = runs / method
    trained = json.loads((run / "metrics.json").read_text())["validation"]
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    evaluated = json.loads((tmp_path / "e" / "metrics.json").read_text())["validation"]
    assert evaluated["loss"] == pytest.approx(trained["loss"], abs=1e-6)
    assert {k: v for k, v in evaluated.items() if k != "loss"} == {k: v for k, v in trained.items() if k != "loss"}

    _, validation = files
    assert main(["predict", f"run_dir={run}", f"input={validation}", "prediction_prefix=pred_",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    rows = read(tmp_path / "p" / "predictions.jsonl")
    for row in rows:
        assert row["pred_label"] == max(row["pred_probs"], key=row["pred_probs"].get)
        assert sum(row["pred_probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(row["pred_label"] == row["label"] for row in rows) / len(rows) == trained["accuracy"]


def test_an_exported_run_loads_with_transformers_alone(runs, tmp_path):
    assert main(["export", f"run_dir={runs / 'full'}", f"output={tmp_path / 'x'}"]) == 0
    assert "AutoModelForCausalLM.from_pretrained(FOLDER)" in (tmp_path / "x" / "README.md").read_text()
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "x")
    saved = AutoModelForCausalLM.from_pretrained(runs / "full" / "model")
    assert all(torch.equal(a, b) for a, b in zip(exported.state_dict().values(), saved.state_dict().values()))


def test_it_trains_on_k_rows_per_class_and_augments_the_columns_its_template_reads(tmp_path, files):
    train, validation = files
    run, synonyms = tmp_path / "run", tmp_path / "synonyms.json"
    synonyms.write_text(json.dumps({"fine": ["good"], "dull": ["boring"], "funny": ["comic"]}))
    assert main(["train", "task=prompt_based", "model=tiny_gpt2", "debug=smoke", f"data.train_file={train}",
                 f"data.validation_file={validation}", f"task.template='{TEMPLATE}'", "data.shots_per_class=2",
                 "data.augment.copies=1", "data.augment.synonyms=[file]",
                 f"data.augment.synonyms_file={synonyms}",
                 f"hydra.run.dir={run}"]) == 0
    rows = json.loads((run / "metrics.json").read_text())["train"]["training_rows"]
    assert rows["read"] == len(REVIEWS) and rows["drawn"] == 4
    assert rows["trained_on"] == 4 + rows["eda_copies"]
