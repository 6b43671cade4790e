"""The built-in training add-ons in real `ftcli train` runs: with them on, a run killed and resumed
ends exactly where an uninterrupted one ends; what the task or model cannot take is refused with
the reason before training, every problem in one config error (exit 3)."""

from __future__ import annotations

import json

from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG
from tests.integration.conftest import SMOKE, ctrl_c_at_step
from tests.integration.test_resume import STEPS, kill_after_first_checkpoint, read_json, weights

SHORTER = ["data.max_train_samples=32", "data.max_eval_samples=16", "trainer.max_steps=8", "trainer.eval_steps=4"]
TOGETHER = ["trainer.adversarial.method=fgm", "trainer.rdrop=1.0", "trainer.label_smoothing=0.1",
            "trainer.layer_decay=0.8", "trainer.ema=0.9"]
FREELB = ["trainer.adversarial.method=freelb", "trainer.adversarial.steps=2"]


def log(run, figures: bool = True):
    """The log records without their timings (and without the figures the training step measured)."""
    kept = {"step", "epoch", "loss", "lr", "eval"}
    return [{k: v for k, v in json.loads(line).items() if k not in ("samples_per_second", "tokens_per_second") and (figures or k in kept)}
            for line in (run / "train_log.jsonl").read_text().splitlines()]


def same_result(whole, resumed, figures: bool = True):
    expected, got = read_json(whole / "metrics.json"), read_json(resumed / "metrics.json")
    assert got["validation"] == expected["validation"] and got["train"]["best_step"] == expected["train"]["best_step"]
    a, b = weights(whole), weights(resumed)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)  # bit-identical on CPU
    assert log(resumed, figures) == log(whole, figures)


def test_a_killed_run_with_fgm_rdrop_smoothing_decay_and_ema_resumes_to_the_uninterrupted_result(tmp_path):
    """With LoRA, whose own learning-rate factors (none here) multiply the layer decay's. The checkpoint
    comes right after a log record, so even the figures the step logs are the same."""
    whole, killed, settings = tmp_path / "whole", tmp_path / "killed", [*SHORTER, *TOGETHER, "method=lora"]
    assert main(["train", *STEPS, *settings, f"hydra.run.dir={whole}"]) == 0
    kill_after_first_checkpoint(killed, *settings)
    [checkpoint] = (killed / "checkpoints").glob("step-*")
    assert (checkpoint / "ema.safetensors").is_file()
    assert main(["train", *STEPS, *settings, "trainer.resume=auto", f"hydra.run.dir={killed}"]) == 0
    same_result(whole, killed)
    assert {"adversarial_loss", "rdrop_kl"} <= log(whole)[0].keys()


def test_freelb_stopped_by_ctrl_c_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """FreeLB draws its random start from the random state a checkpoint restores. The figures a step
    measures since the last log record start again at a resume, as the tasks' own do: the first
    record after step 3 counts step 4 alone, so only the loop's own fields are compared."""
    from ftcli.errors import EXIT_INTERRUPTED

    settings = [*STEPS, *SHORTER, *FREELB, "trainer.save_every=100"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(["train", *settings, f"hydra.run.dir={whole}"]) == 0
    with ctrl_c_at_step(monkeypatch, 3):
        assert main(["train", *settings, f"hydra.run.dir={stopped}"]) == EXIT_INTERRUPTED
    assert main(["train", *settings, "trainer.resume=auto", f"hydra.run.dir={stopped}"]) == 0
    same_result(whole, stopped, figures=False)
    assert "adversarial_loss" in log(whole)[0]


def refusal(tmp_path, capsys, *overrides: str) -> str:
    """The config error `ftcli train` exits with for `overrides`, on one line."""
    capsys.readouterr()
    assert main(["train", *SMOKE, *overrides, f"hydra.run.dir={tmp_path / 'run'}"]) == EXIT_CONFIG
    return " ".join(capsys.readouterr().err.split())


def test_a_task_with_a_loss_of_its_own_refuses_the_add_ons_that_rework_one_forward_pass(tmp_path, capsys):
    message = refusal(tmp_path, capsys, "task=preference", "model=tiny_gpt2", *TOGETHER[:3])
    assert "3 problems" in message
    assert ("trainer.rdrop=1.0 reworks the model's own cross-entropy over classes; task=preference trains with a "
            "loss of its own (PreferenceStep), so there is none to rework") in message
    assert "trainer.label_smoothing=0.1 reworks the model's own cross-entropy" in message
    assert ("trainer.adversarial.method=fgm perturbs the input embeddings of one forward pass per example; "
            "task=preference trains with a loss of its own (PreferenceStep) that compares paired or sampled "
            "sequences") in message
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_head_without_classes_refuses_rdrop_and_label_smoothing(tmp_path, capsys):
    message = refusal(tmp_path, capsys, "task=text_classification", "task.problem=multi_label", *TOGETHER[:3])
    assert "2 problems" in message  # adversarial training needs no classes: it is not refused
    for setting in ("trainer.rdrop=1.0", "trainer.label_smoothing=0.1"):
        assert (f"{setting} needs a distribution over classes; task=text_classification with these settings trains "
                "a head that predicts no single class") in message


def test_layer_decay_is_refused_for_a_model_whose_layers_have_no_numbered_names(tmp_path, capsys):
    """ALBERT shares one group of layer weights across its depth: there is no layer i to give a rate."""
    import torch
    from transformers import AlbertConfig, AlbertModel, AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    folder = tmp_path / "albert"
    torch.manual_seed(0)
    AlbertModel(AlbertConfig(vocab_size=30522, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=37)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(embedded_tokenizer_path()).save_pretrained(folder)
    message = refusal(tmp_path, capsys, f"model.name_or_path={folder}", "trainer.layer_decay=0.8")
    assert ("trainer.layer_decay=0.8: no transformer layers found among the parameter names of this "
            "AlbertForSequenceClassification") in message


def test_settings_out_of_range_are_refused_together_before_anything_runs(tmp_path, capsys):
    message = refusal(tmp_path, capsys, "trainer.adversarial.method=pgd", "trainer.adversarial.epsilon=0",
                      "trainer.adversarial.steps=0", "trainer.compile=true", "trainer.rdrop=-1",
                      "trainer.label_smoothing=1", "trainer.layer_decay=0", "trainer.ema=1")
    for problem in ("trainer.adversarial.epsilon=0.0 must be positive", "trainer.adversarial.steps=0 must be at least 1",
                    "trainer.rdrop=-1.0 must be 0 (off) or positive", "trainer.label_smoothing=1.0 must be in [0, 1)",
                    "trainer.layer_decay=0.0 must be in (0, 1]", "trainer.ema=1.0 must be in (0, 1)",
                    "trainer.adversarial.method=pgd cannot be combined with trainer.compile=true: the compiled "
                    "forward pass does not see the hook that adds the perturbation"):
        assert problem in message
    assert "7 problems" in message and not (tmp_path / "run").exists()
