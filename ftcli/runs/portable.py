"""Base-model names in what ftcli writes, as another machine can load them.

The embedded MiniLM loads from a folder inside an installed Python package, and PEFT and
`transformers` record the folder a model was loaded from: `base_model_name_or_path` (and a prompt
tuning's `tokenizer_name_or_path`) in `adapter_config.json`, the `_name_or_path` of each half of a
warm-started encoder-decoder in `config.json`, the base model in PEFT's `README.md`. That path
names one virtual environment on one machine, so ftcli writes the public id the embedded model is
a copy of instead. A local folder given as `model.name_or_path` is the user's own and is kept.
ftcli itself reads none of these fields: it rebuilds the base model from the run's `config.yaml`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftcli.config.schema import EMBEDDED_MODEL
from ftcli.errors import ModelError

PUBLIC_IDS = {EMBEDDED_MODEL: "sentence-transformers/all-MiniLM-L6-v2"}  # embedded model → the hub id it copies
NAMING_FILES = ("adapter_config.json", "config.json")  # JSON files whose values may name the base model
CARD = "README.md"  # PEFT's model card names it too


def public_name(name_or_path: str) -> str:
    """`model.name_or_path` as it is written down for others: an embedded model's public id, else as given."""
    from ftcli.models.warmstart import WARMSTART_PREFIX, encoder_reference, is_warmstart

    if is_warmstart(name_or_path):
        return WARMSTART_PREFIX + public_name(encoder_reference(name_or_path))
    return PUBLIC_IDS.get(name_or_path, name_or_path)


def make_portable(folder: Path) -> None:
    """Rewrite the files of a saved model or adapter `folder` that name an embedded model by its
    folder in the virtual environment, to name it by its public id."""
    from ftcli.files import write_text_atomic

    names = _embedded_folders()
    if not names:
        return
    for name in NAMING_FILES:
        path = folder / name
        if path.is_file():
            document = json.loads(path.read_text(encoding="utf-8"))
            portable = _renamed(document, names)
            if portable != document:
                write_text_atomic(path, json.dumps(portable, indent=2, sort_keys=True) + "\n")
    card = folder / CARD
    if card.is_file():
        text = original = card.read_text(encoding="utf-8")
        for local in sorted(names, key=len, reverse=True):  # a resolved path may contain the other
            text = text.replace(local, names[local])
        if text != original:
            write_text_atomic(card, text)


def _embedded_folders() -> dict[str, str]:
    """Each installed embedded model's folder, as given and fully resolved, mapped to its public id."""
    from ftcli.models.sources import resolve

    folders = {}
    for reference, public in PUBLIC_IDS.items():
        try:
            folder = resolve(reference)
        except ModelError:  # not installed, so nothing can have been loaded from it
            continue
        folders[folder] = folders[str(Path(folder).resolve())] = public
    return folders


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """`value` (parsed JSON) with every string that is one of `names` replaced by its public id."""
    if isinstance(value, dict):
        return {key: _renamed(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, names) for item in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value
