"""Command-line words as a person types them, rewritten into what Hydra accepts.

Three conveniences, each a pure function of the words: Hydra's flags may stand anywhere among
the overrides, `model=<hub id or folder>` works as a shorthand for `model.name_or_path=`, and a
dict setting given whole (`task.label_words={0: ' bad', 1: ' good'}`) replaces the default,
which Hydra would otherwise refuse for keys the default does not have.
"""

from __future__ import annotations

import difflib
from pathlib import Path

HYDRA_FLAGS_WITH_VALUE = {
    "--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
    "--config-dir", "-cd", "--experimental-rerun",
}
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
DICT_SETTINGS = ("task.label_words",)  # settings whose value is a dict with the user's own keys


def flags_first(args: list[str]) -> list[str]:
    """Hydra's flags, then every override: Hydra's argparse rejects overrides split by a flag
    (`a=1 --cfg job b=2`), which a person writes naturally."""
    flags, overrides = [], []
    tokens = iter(args)
    for token in tokens:
        if not token.startswith("-"):
            overrides.append(token)
            continue
        flags.append(token)
        if token in HYDRA_FLAGS_WITH_VALUE:
            flags.append(next(tokens, ""))
    for i, token in enumerate(flags):  # --info takes an optional value that parsed as an override
        if token in ("--info", "-i") and overrides and overrides[0] in INFO_CHOICES:
            flags.insert(i + 1, overrides.pop(0))
            break
    return flags + overrides


def normalise(command: str, args: list[str], configs: Path) -> list[str]:
    args = flags_first(args)
    if command in ("train", "eval"):
        args = [model_choice_as_path(arg, configs) for arg in args]
    return [dict_as_whole(arg) for arg in args]


def dict_as_whole(override: str) -> str:
    """`task.label_words={...}` as `++task.label_words={...}`: set the whole dict, new keys included."""
    key, sep, value = override.partition("=")
    if key in DICT_SETTINGS and sep and value.lstrip().startswith("{"):
        return f"++{override}"
    return override


def model_choice_as_path(override: str, configs: Path) -> str:
    """`model=<hub id or folder>` means `model.name_or_path=<it>` when it names no model config.

    A value close to a config name (a typo such as `model=minlm`) is left for Hydra to reject
    with the list of options.
    """
    key, sep, value = override.partition("=")
    if key != "model" or not sep or not value:
        return override
    options = [p.stem for p in (configs / "model").glob("*.yaml")]
    values = value.split(",")
    if any(v in options or (difflib.get_close_matches(v, options, n=1, cutoff=0.75) and "/" not in v) for v in values):
        return override
    return f"model.name_or_path={value}"
