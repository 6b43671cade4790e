"""`ftcli export`: folders that load without ftcli (and, merged, without peft) and predict the same."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG, EXIT_RUN_DIR

TEXTS = ["a wonderful, warm film", "cold food and rude staff", "fine"]

# Loads the exported folder with transformers alone: peft and ftcli are made unimportable.
STANDALONE = """
import json, sys
sys.modules["peft"] = None
sys.modules["ftcli"] = None
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, texts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
with torch.inference_mode():
    probs = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
labels = [model.config.id2label[i] for i in range(probs.shape[-1])]
print(json.dumps([dict(zip(labels, p.tolist())) for p in probs]))
"""


def predicted(run, tmp_path) -> list[dict]:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    return [json.loads(line)["probs"] for line in out.read_text().splitlines()]


def standalone(folder) -> list[dict]:
    result = subprocess.run([sys.executable, "-c", STANDALONE, str(folder), json.dumps(TEXTS)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("method", "merge"), [("lora", True), ("ia3", True), ("full", False), ("bitfit", True)])
def test_export_loads_with_transformers_alone_and_predicts_the_same(trained_runs, tmp_path, method, merge):
    folder = tmp_path / "export"
    assert main(["export", f"run_dir={trained_runs[method]}", f"output={folder}", f"merge={str(merge).lower()}",
                 f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert not (folder / "adapter_config.json").exists()
    card = (folder / "README.md").read_text()
    assert "library_name: transformers" in card and f"method: `{method}`" in card
    expected, got = predicted(trained_runs[method], tmp_path), standalone(folder)
    for want, have in zip(expected, got):
        assert want.keys() == have.keys()
        assert all(abs(want[k] - have[k]) < 1e-4 for k in want)


def test_export_without_merge_is_a_peft_adapter_with_a_card(trained_runs, tmp_path):
    folder = tmp_path / "adapter"
    assert main(["export", f"run_dir={trained_runs['lora']}", f"output={folder}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    card = (folder / "README.md").read_text()
    assert "library_name: peft" in card and "AutoPeftModelForSequenceClassification" in card
    assert '"validation"' in card and "ftcli train model=tiny_bert" in card


@pytest.mark.parametrize("method", ["adapter", "lora_prefix", "prompt_tuning"])
def test_merge_is_refused_for_methods_that_add_computation(trained_runs, tmp_path, method):
    folder = tmp_path / "merged"
    assert main(["export", f"run_dir={trained_runs[method]}", f"output={folder}", "merge=true",
                 f"hydra.run.dir={tmp_path / 'e'}"]) == EXIT_CONFIG
    assert not folder.exists()


@pytest.mark.parametrize("method", ["adapter", "lora_adapter"])
def test_export_of_an_ftcli_adapter_loads_onto_its_base_and_predicts_the_same(trained_runs, tmp_path, method):
    import torch
    from transformers import AutoTokenizer

    from ftcli.config.schema import ModelConfig
    from ftcli.methods.native import load_adapter
    from ftcli.models.loading import build_model
    from ftcli.tasks import TASKS

    folder = tmp_path / "adapter"
    assert main(["export", f"run_dir={trained_runs[method]}", f"output={folder}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    card = (folder / "README.md").read_text()
    assert "library_name: ftcli" in card and "load_adapter(base, FOLDER)" in card
    base = build_model(ModelConfig(name_or_path="tiny:bert"), TASKS.get("sentiment").impl.model_class(),
                       ["negative", "positive"])
    model = load_adapter(base, folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.inference_mode():
        probs = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits.softmax(-1)
    for want, have in zip(predicted(trained_runs[method], tmp_path), probs.tolist()):
        assert [want["negative"], want["positive"]] == pytest.approx(have, abs=1e-5)


def test_export_refuses_a_non_empty_folder(trained_runs, tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["export", f"run_dir={trained_runs['full']}", f"output={folder}", f"hydra.run.dir={tmp_path / 'e'}"]) \
        == EXIT_RUN_DIR
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
