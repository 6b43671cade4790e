"""Compose and check every job of a command line before Hydra runs anything.

Hydra reports a typo as `Key 'lrr' not in 'TrainerConfig'` and exits 1 in the middle of a run
(or, in a sweep, after earlier jobs ran). Composing each job first lets ftcli fail before any
model loads, list the valid keys or options with a "did you mean", and exit with its config
error code.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, cast

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

from ftcli.cli.registered import to_typed
from ftcli.commands import Job, job_for
from ftcli.config import schema
from ftcli.errors import ConfigError
from ftcli.registry import did_you_mean


def check_overrides(command: str | Job, argv: list[str], config_dir: Path) -> None:
    """Raise ConfigError for the first job whose config does not compose or check."""
    from hydra._internal.utils import get_args_parser

    args = get_args_parser().parse_args(argv)
    target = command if isinstance(command, Job) else job_for(command, args.overrides)
    jobs = _expand(args.overrides) if args.multirun else [args.overrides]
    with initialize_config_dir(str(config_dir), version_base="1.3", job_name=target.config_name):
        for job in jobs:
            for word in job:  # Hydra fails on these with a bare AssertionError
                key, sep, _ = word.partition("=")
                if sep and not key.lstrip("+~").strip():
                    raise ConfigError(
                        f"{word!r} has no key before '='; write KEY=VALUE, e.g. trainer.lr=1e-4",
                        hint=_hint(target.usage, job),
                    )
            try:
                cfg = compose(config_name=target.config_name, overrides=job)
            except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException) as exc:
                raise ConfigError(_explain(exc), hint=_hint(target.usage, job)) from exc
            except (TypeError, ValueError) as exc:  # how Hydra's defaults list fails on `group=1`, `group=null`
                problem = _group_value(job) or str(exc).strip().splitlines()[0]
                raise ConfigError(problem, hint=_hint(target.usage, job)) from exc
            if args.cfg is None:
                to_typed(cfg, getattr(schema, target.schema))


def known_settings(job: Job, overrides: list[str], config_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """Every setting of the job's config (dotted key → default) and its config groups.

    Composed with `overrides` when they compose, so `method=lora --rank 8` finds `method.rank`;
    else with the defaults alone. `<group>.name` keys are left out: the group choice sets them.
    """
    from omegaconf import OmegaConf

    for given in (overrides, []):
        try:
            with initialize_config_dir(str(config_dir), version_base="1.3", job_name=job.config_name):
                cfg = compose(config_name=job.config_name, overrides=given, return_hydra_config=True)
        except Exception:  # malformed overrides: they are reported once the flags are fixed
            continue
        groups = [group for group in cfg.hydra.runtime.choices if not group.startswith("hydra")]
        raw = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=False))  # a config's root is a mapping
        raw.pop("hydra", None)
        settings = {key: value for key, value in _flatten(raw).items() if key not in {f"{g}.name" for g in groups}}
        return {**settings, "hydra.run.dir": None}, groups
    return {}, []


def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as `{"a.b": value}`."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _expand(overrides: list[str]) -> list[list[str]]:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]
    except Exception as exc:  # range and interval sweeps are left to Hydra's own sweeper
        if isinstance(exc, OverrideParseException):
            raise ConfigError(str(exc).splitlines()[0]) from exc
        return []


def _explain(exc: BaseException) -> str:
    if isinstance(exc, MissingConfigException) and exc.options is not None:
        match = re.search(r"Could not find '([^/']+)/([^']+)'", str(exc))
        if match:
            group, choice = match.groups()
            options = sorted(exc.options)
            return (
                f"{group}={choice} is not an option{did_you_mean(choice, options)}; "
                f"options for {group}: {', '.join(options)}"
            )
    cause = _key_error(exc)
    if cause is not None:
        return cause
    message = str(exc).strip().splitlines()[0]
    root: BaseException = exc
    while (inner := root.__cause__ or root.__context__) is not None:
        root = inner
    detail = str(root).strip().splitlines()[0] if root is not exc and str(root).strip() else ""
    return f"{message}: {detail}" if detail and detail not in message else message


def _group_value(job: list[str]) -> str | None:
    """'GROUP=VALUE is not an option ...' for the first override giving a config group a value that is not a name.

    Hydra rejects a null, a number or a list holding one for a group (`method=1`, `debug=null`)
    with a bare TypeError or ValueError that names neither the override nor the options.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = GlobalHydra.instance().config_loader()
    for override in OverridesParser.create().parse_overrides(job):
        group, value = override.key_or_group, override.value()
        parent, _, name = group.rpartition("/")
        items = value if isinstance(value, list) else [value]
        if (override.is_delete() and value is None) or all(isinstance(item, str) for item in items):
            continue
        if name not in loader.list_groups(parent):
            continue
        options = ", ".join(sorted(loader.get_group_options(group)))
        if value is None:
            problem = f"{override.input_line}: a config group cannot be null; ~{group} leaves it out"
            return f"{problem}; options for {group}: {options}"
        return f"{override.input_line} is not an option; options for {group}: {options}"
    return None


def _key_error(exc: BaseException) -> str | None:
    """'KEY is not a setting; valid keys under PARENT: ...' for an unknown key in a schema."""
    seen: BaseException | None = exc
    while seen is not None:
        object_type = getattr(seen, "object_type", None)
        full_key = getattr(seen, "full_key", None)
        if full_key and object_type is not None and dataclasses.is_dataclass(object_type) and "not in" in str(seen):
            parent, _, key = str(full_key).rpartition(".")
            valid = [f.name for f in dataclasses.fields(object_type)]
            where = f" under {parent}" if parent else ""
            return f"{full_key} is not a setting{did_you_mean(key, valid)}; valid keys{where}: {', '.join(valid)}"
        seen = seen.__cause__ or seen.__context__
    return None


def _hint(command: str, job: list[str]) -> str:
    return f"`ftcli {command} --help` lists the groups and settings; overrides given: " + (" ".join(job) or "(none)")
