"""Tests of ftcli.runs.portable: saved folders name the embedded model by its public id, not its venv folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftcli.config.schema import EMBEDDED_MODEL
from ftcli.models.sources import resolve
from ftcli.runs.portable import make_portable, public_name

PUBLIC_ID = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize(("name", "expected"), [
    (EMBEDDED_MODEL, PUBLIC_ID),
    (f"warmstart:{EMBEDDED_MODEL}", f"warmstart:{PUBLIC_ID}"),
    ("distilbert/distilbert-base-uncased", "distilbert/distilbert-base-uncased"),
    ("/data/models/mine", "/data/models/mine"),
    ("tiny:bert", "tiny:bert"),
])
def test_public_name(name, expected):
    assert public_name(name) == expected


def test_make_portable_renames_the_embedded_folder_and_keeps_the_users_own(tmp_path):
    embedded = resolve(EMBEDDED_MODEL)
    adapter = {"base_model_name_or_path": embedded, "tokenizer_name_or_path": str(Path(embedded).resolve()), "r": 8}
    config = {"encoder": {"_name_or_path": embedded}, "decoder": {"_name_or_path": "/data/models/mine"}}
    (tmp_path / "adapter_config.json").write_text(json.dumps(adapter), encoding="utf-8")
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (tmp_path / "README.md").write_text(f"---\nbase_model: {embedded}\n---\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    make_portable(tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text()) == {
        "base_model_name_or_path": PUBLIC_ID, "tokenizer_name_or_path": PUBLIC_ID, "r": 8,
    }
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "encoder": {"_name_or_path": PUBLIC_ID}, "decoder": {"_name_or_path": "/data/models/mine"},
    }
    assert (tmp_path / "README.md").read_text() == f"---\nbase_model: {PUBLIC_ID}\n---\n"
    assert (tmp_path / "tokenizer_config.json").read_text() == "{}"


def test_make_portable_leaves_a_folder_that_names_no_embedded_model_untouched(tmp_path):
    text = '{"base_model_name_or_path": "/data/models/mine"}'
    (tmp_path / "adapter_config.json").write_text(text, encoding="utf-8")
    make_portable(tmp_path)
    assert (tmp_path / "adapter_config.json").read_text() == text
