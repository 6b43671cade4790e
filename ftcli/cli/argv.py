"""Command-line words as a person types them, rewritten into what Hydra accepts.

Three conveniences, each a pure function of the words: Hydra's flags may stand anywhere among
the overrides, `model=<hub id or folder>` works as a shorthand for `model.name_or_path=`, and a
dict setting given whole (`task.label_words={0: ' bad', 1: ' good'}`) replaces the default,
which Hydra would otherwise refuse for keys the default does not have. A `--flag` that is not
one of Hydra's is found here too (`unknown_flags`), with the `key=value` it most likely meant
(`flag_as_override`), so the CLI can refuse it with ftcli's usage panel instead of argparse's.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, NamedTuple

HYDRA_FLAGS_WITH_VALUE = {
    "--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
    "--config-dir", "-cd", "--experimental-rerun",
}
HYDRA_FLAGS_WITHOUT_VALUE = {  # --info takes an optional value, one of INFO_CHOICES
    "--help", "-h", "--hydra-help", "--version", "--resolve", "--run", "-r", "--multirun", "-m",
    "--shell-completion", "-sc", "--info", "-i",
}
HYDRA_FLAGS = HYDRA_FLAGS_WITH_VALUE | HYDRA_FLAGS_WITHOUT_VALUE
# The names other fine-tuning scripts (the transformers Trainer's) give to ftcli's settings.
FLAG_ALIASES = {
    "learning_rate": "lr", "num_train_epochs": "epochs", "num_epochs": "epochs",
    "per_device_train_batch_size": "batch_size", "train_batch_size": "batch_size",
    "per_device_eval_batch_size": "eval_batch_size", "gradient_accumulation_steps": "grad_accum_steps",
    "model_name_or_path": "model.name_or_path", "output_dir": "hydra.run.dir",
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


class UnknownFlag(NamedTuple):
    """A `--flag` Hydra does not take, where it stands in the words and the value typed with it."""

    flag: str  # as typed, without `=value`
    value: str | None  # `--epochs=3` or `--epochs 3`: "3"; None when no value follows
    at: int  # index of the flag among the words
    size: int  # words it spans: 2 for `--epochs 3`, else 1


def is_hydra_flag(token: str) -> bool:
    """Whether Hydra's argparse takes `token` as one of its flags: exactly, as `--flag=value`, or as
    an unambiguous abbreviation of a long flag (`--multi`), as argparse does."""
    name = token.split("=", 1)[0]
    if name in HYDRA_FLAGS:
        return True
    longer = [flag for flag in HYDRA_FLAGS if flag.startswith("--") and flag.startswith(name)]
    return name.startswith("--") and len(longer) == 1


def unknown_flags(args: list[str]) -> list[UnknownFlag]:
    """Every word that starts with `-` and is not one of Hydra's flags (nor a negative number).

    The word after an unknown flag is taken as its value when it is neither a flag nor an
    override (`--epochs 3`); `--epochs task=ner` has no value.
    """
    found = []
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or token in ("-", "--") or _is_number(token):
            i += 1
        elif is_hydra_flag(token):
            i += 2 if token in HYDRA_FLAGS_WITH_VALUE else 1
        else:
            flag, sep, value = token.partition("=")
            following = args[i + 1] if i + 1 < len(args) else None
            takes_next = not sep and following is not None and "=" not in following and (
                not following.startswith("-") or _is_number(following)
            )
            found.append(UnknownFlag(flag, value if sep else following if takes_next else None, i, 2 if takes_next else 1))
            i += 2 if takes_next else 1
    return found


def without_flags(args: list[str], flags: list[UnknownFlag]) -> list[str]:
    """The words with the unknown flags (and the values they took) left out."""
    dropped = {flag.at + k for flag in flags for k in range(flag.size)}
    return [word for i, word in enumerate(args) if i not in dropped]


def flag_as_override(flag: UnknownFlag, settings: Mapping[str, Any], groups: Collection[str]) -> list[str]:
    """The overrides a `--flag` most likely meant: `--epochs 3` → `trainer.epochs=3`, `--method lora`
    → `method=lora`, `--trainer.lr=1e-4` → `trainer.lr=1e-4`; several when its name is the last part
    of several settings, none when it matches nothing.

    `settings` maps each dotted key of the composed config to its default; `groups` are the config
    groups. A flag without a value becomes `=true` for a boolean setting, `=VALUE` otherwise.
    """
    name = flag.flag.lstrip("-").replace("-", "_")
    name = FLAG_ALIASES.get(name, name)
    if name in groups:
        return [f"{name}={flag.value if flag.value is not None else 'OPTION'}"]
    keys = [name] if name in settings else [key for key in settings if key.rsplit(".", 1)[-1] == name]
    if not keys:
        leaves = sorted({key.rsplit(".", 1)[-1] for key in settings})
        close = difflib.get_close_matches(name, leaves, n=1, cutoff=0.8)
        keys = [key for key in settings if close and key.rsplit(".", 1)[-1] == close[0]]
    return [f"{key}={_flag_value(flag.value, settings[key])}" for key in keys]


def _flag_value(value: str | None, default: Any) -> str:
    if value is not None:
        return value
    return "true" if isinstance(default, bool) else "VALUE"


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
