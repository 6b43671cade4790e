"""What Hydra lets through, checked after compose, with every problem reported at once.

Hydra's schema validation rejects unknown keys and wrong types, but not everything: `+key=value`
adds keys the schema does not have (and `OmegaConf.to_object` then silently drops them), `???`
values fail only when read, and rules across fields are beyond a schema. `to_typed` closes those
gaps and returns the typed dataclass tree. Rules that need the task, scorer and method
registries come from the layer that owns them (`ftcli.cli.registered`), through `RegistryRules`:
this layer imports none of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, TypeVar, cast

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from ftcli.config.schema import plain
from ftcli.errors import ConfigError, first_line
from ftcli.registry import did_you_mean

T = TypeVar("T")


class RegistryRules(Protocol):
    """Checks of a typed config that need the registries, supplied by the layer that owns them.

    Each returns its problems (none: `[]`); `to_typed` reports them where ftcli always has: rules
    across config groups before each group's own problems, unregistered names last.
    """

    def across_groups(self, cfg: Any) -> list[str]:
        """Rules across config groups (a task with a method) that ask what a registered name is."""

    def registered(self, cfg: Any) -> list[str]:
        """Task and method names that no registered implementation, or not the one with these settings, has."""


def to_typed(cfg: DictConfig, schema: type[T], rules: RegistryRules | None = None) -> T:
    """Check a composed config and return it as `schema` (a dataclass tree).

    Without `rules`, only what the schemas themselves know is checked (`ftcli.cli.registered.to_typed`
    passes the registries' rules).

    Raises:
        ConfigError: listing every missing value, unknown key and broken cross-field rule.
    """
    cfg = _without_hydra(cfg)
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise ConfigError(
                [f"{key} is required: add {key}=..." for key in missing],
                hint="values shown as ??? in `--cfg job` must be given on the command line",
            )
        typed = OmegaConf.to_object(cfg)
        given = OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as exc:  # `key=${typo}`, `key=${oc.env:UNSET}`
        raise ConfigError(
            _problem(exc),
            hint="${...} must name another setting, e.g. ${trainer.batch_size}, or a resolver, e.g. "
            "${oc.env:NAME,default}; write \\${...} for the literal text",
        ) from exc
    except OmegaConfBaseException as exc:
        raise ConfigError(_problem(exc)) from exc
    problems = unknown_keys(given, plain(typed))
    problems += rules.across_groups(typed) if rules is not None else []
    problems += _validate_tree(typed)
    problems += rules.registered(typed) if rules is not None else []
    if problems:
        raise ConfigError(problems)
    return cast(T, typed)  # a structured config of `schema` converts to an instance of it


def _problem(exc: OmegaConfBaseException) -> str:
    """The first line of an OmegaConf error, led by the setting it is about when the line does not name it."""
    message = first_line(exc)
    key = getattr(exc, "full_key", None)
    return f"{key}: {message}" if key and str(key) not in message else message


def unknown_keys(given: Any, known: Any, prefix: str = "") -> list[str]:
    """Keys present in `given` but absent from the schema-shaped `known`, with the valid ones."""
    if not isinstance(given, dict) or not isinstance(known, dict):
        return []
    problems = []
    for key, value in given.items():
        path = f"{prefix}{key}"
        if key not in known:
            valid = sorted(known)
            problems.append(
                f"{path} is not a known setting{did_you_mean(str(key), valid)}; "
                f"valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(valid)}"
            )
        else:
            problems += unknown_keys(value, known[key], f"{path}.")
    return problems


def _validate_tree(node: Any, prefix: str = "") -> list[str]:
    problems = []
    if hasattr(node, "validate"):
        problems += node.validate()
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            problems += _validate_tree(getattr(node, f.name), f"{prefix}{f.name}.")
    return problems


def _without_hydra(cfg: DictConfig) -> DictConfig:
    if "hydra" not in cfg:
        return cfg
    copy = cfg.copy()
    with open_dict(copy):
        del copy["hydra"]
    return copy
