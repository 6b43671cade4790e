"""Saved and exported folders work for others: PEFT alone loads an adapter with its labels and head,
the embedded model is named by its public id, and files get the modes of the user's umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import train

TEXTS = ["Investors pull money from property funds", "Asteroid sample holds building blocks", "Rugby squad named"]

# Loads a folder with ftcli unimportable, as a user with only transformers and peft would: `{load}`
# sets `model` from FOLDER; prints the labels and probabilities it gets.
STANDALONE = """
import json, sys
sys.modules["ftcli"] = None
import torch
from transformers import AutoTokenizer
FOLDER, texts = sys.argv[1], json.loads(sys.argv[2])
{load}
model.eval()
tokenizer = AutoTokenizer.from_pretrained(FOLDER)
with torch.inference_mode():
    probs = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
print(json.dumps({{"id2label": {{str(k): v for k, v in model.config.id2label.items()}}, "probs": probs.tolist()}}))
"""
CARD_CODE = 'exec(open(FOLDER + "/README.md", encoding="utf-8").read().split("```python\\n")[1].split("```")[0])'


def standalone(folder: Path, load: str, **env: str) -> dict:
    """What `STANDALONE` with the loading code `load` prints for `folder` and `TEXTS`."""
    result = subprocess.run([sys.executable, "-c", STANDALONE.format(load=load), str(folder), json.dumps(TEXTS)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def flat(rows: list[list[float]]) -> list[float]:
    return [value for row in rows for value in row]


@contextmanager
def umask(mask: int):
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


@pytest.fixture(scope="module")
def headless_base(tmp_path_factory) -> Path:
    """A tiny BERT saved as a local folder without a task head, like a hub checkpoint, with a tokenizer."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path
    from ftcli.models.tiny import tiny_config

    folder = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config("bert")).save_pretrained(folder)
    AutoTokenizer.from_pretrained(embedded_tokenizer_path()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory, headless_base) -> dict[str, Path]:
    """A LoRA run on the headless base with more than two labels, trained under umask 022, and a
    full fine-tuning run trained under umask 077."""
    root = tmp_path_factory.mktemp("runs")
    with umask(0o022):
        lora = train(root / "lora", "task=text_classification", f"model.name_or_path={headless_base}", "method=lora")
    with umask(0o077):
        full = train(root / "full", "method=full")
    return {"lora": lora, "full": full}


def export(run: Path, folder: Path, tmp_path: Path, *options: str) -> Path:
    assert main(["export", f"run_dir={run}", f"output={folder}", *options, f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    return folder


def predicted(run: Path, tmp_path: Path) -> list[dict[str, float]]:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "preds.jsonl"
    command = ["predict", f"run_dir={run}", f"input={source}", f"output={out}", f"hydra.run.dir={tmp_path / 'p'}"]
    assert main(command) == 0
    return [json.loads(line)["probs"] for line in out.read_text(encoding="utf-8").splitlines()]


def test_a_lora_adapter_loads_with_peft_alone_with_its_labels_and_trained_head(runs, headless_base, tmp_path):
    folder = export(runs["lora"], tmp_path / "adapter", tmp_path)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(headless_base)
    loaded = standalone(folder, CARD_CODE)
    labels = json.loads((runs["lora"] / "labels.json").read_text())["labels"]
    assert len(labels) > 2 and loaded["id2label"] == {str(i): name for i, name in enumerate(labels)}
    for want, have in zip(predicted(runs["lora"], tmp_path), loaded["probs"], strict=True):
        assert [want[name] for name in labels] == pytest.approx(have, abs=1e-5)


@pytest.mark.parametrize(("run", "mask", "file_mode", "dir_mode"), [
    ("lora", 0o022, 0o644, 0o755),
    ("full", 0o077, 0o600, 0o700),
])
def test_run_directory_and_export_have_the_modes_of_the_umask(runs, tmp_path, run, mask, file_mode, dir_mode):
    with umask(mask):
        folder = export(runs[run], tmp_path / "export", tmp_path)
    for top in (runs[run], folder):
        assert stat.S_IMODE(top.stat().st_mode) == dir_mode
        for root, dirs, files in os.walk(top):
            for name in dirs:
                assert stat.S_IMODE((Path(root) / name).stat().st_mode) == dir_mode, Path(root) / name
            for name in files:
                assert stat.S_IMODE((Path(root) / name).stat().st_mode) == file_mode, Path(root) / name


@pytest.fixture
def hub_cache(tmp_path) -> Path:
    """A Hugging Face cache in which the public id of the embedded model is a copy of it, so that
    loaders that fetch it by that id find it offline."""
    from ftcli.config.schema import EMBEDDED_MODEL
    from ftcli.models.sources import resolve
    from ftcli.runs.portable import PUBLIC_IDS

    commit = "0" * 40
    repo = tmp_path / "hub" / ("models--" + PUBLIC_IDS[EMBEDDED_MODEL].replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for file in Path(resolve(EMBEDDED_MODEL)).iterdir():
        if file.is_file():
            (snapshot / file.name).symlink_to(file)
    return tmp_path / "hub"


def test_an_adapter_on_the_embedded_model_names_its_public_id_and_loads_with_peft(tmp_path, hub_cache):
    """Saved the way `train` saves it; ftcli loads it back offline from the run's config, and PEFT's
    AutoPeftModel from the public id (found in a local cache here)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ftcli.commands.export import _loading_snippet
    from ftcli.config.schema import EMBEDDED_MODEL, ModelConfig
    from ftcli.files import staged_dir
    from ftcli.methods import METHODS, head_modules
    from ftcli.models.loading import build_model
    from ftcli.models.sources import resolve
    from ftcli.runs.portable import make_portable, public_name

    labels, settings = ["low", "middle", "high"], {"problem_type": "single_label_classification"}
    lora = METHODS.get("lora")
    model = build_model(ModelConfig(EMBEDDED_MODEL), AutoModelForSequenceClassification, labels, **settings)
    model = lora.impl.apply(model, lora.config_cls(), head_modules(model))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.1)
    tokenizer = AutoTokenizer.from_pretrained(resolve(EMBEDDED_MODEL))
    folder = tmp_path / "adapter"
    with staged_dir(folder) as tmp:
        lora.impl.save(model, tmp, lora.config_cls())
        tokenizer.save_pretrained(tmp)
        make_portable(tmp)
    venv_folder = resolve(EMBEDDED_MODEL)
    assert not [f.name for f in folder.iterdir() if venv_folder in f.read_text(encoding="utf-8", errors="replace")]
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "sentence-transformers/all-MiniLM-L6-v2"

    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model.eval()(**batch).logits.softmax(-1).tolist()
        base = build_model(ModelConfig(EMBEDDED_MODEL), AutoModelForSequenceClassification, labels, **settings)
        reloaded = lora.impl.load(base, folder).eval()(**batch).logits.softmax(-1).tolist()
    assert flat(reloaded) == pytest.approx(flat(expected), abs=1e-6)

    card_code = _loading_snippet("peft", public_name(EMBEDDED_MODEL), "ForSequenceClassification", labels, settings)
    loaded = standalone(folder, "\n".join(card_code), HF_HUB_CACHE=str(hub_cache))
    assert loaded["id2label"] == {"0": "low", "1": "middle", "2": "high"}
    assert flat(loaded["probs"]) == pytest.approx(flat(expected), abs=1e-5)
