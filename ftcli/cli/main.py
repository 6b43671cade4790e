"""The `ftcli` entry point: the first word picks the command, Hydra gets the rest.

Each command is a real `hydra.main` app (`config_name=<command>`), so overrides, `-m` sweeps,
`--cfg job` and Hydra's run directories all work. Before Hydra runs, the overrides are composed
once (every job of a sweep) and checked, so a typo fails before any model loads, with the valid
choices, and with one of ftcli's exit codes. Only the standard library is imported at module
level, so `ftcli --help` is instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ftcli import __version__
from ftcli.cli.argv import normalise, unknown_flags
from ftcli.errors import EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_OK, EXIT_RUN_DIR

# Exit codes of a `train` refused before it trained: config, data, model or run directory.
REFUSALS = (EXIT_OK, EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_RUN_DIR)  # EXIT_OK: NothingToDo
HYDRA_FLAGS_WITHOUT_CHECK = ("--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc")


def config_dir() -> Path:
    """`FTCLI_CONFIG_DIR`, else the configs shipped in the package, else the source checkout's."""
    if os.environ.get("FTCLI_CONFIG_DIR"):
        return Path(os.environ["FTCLI_CONFIG_DIR"]).resolve()
    package = Path(__file__).resolve().parent.parent
    shipped = package / "configs"
    return shipped if shipped.is_dir() else package.parent / "configs"


def main(argv: list[str] | None = None) -> int:
    from ftcli.commands import COMMANDS, job_for

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        from ftcli import ui
        from ftcli.cli.help import SUMMARIES

        ui.print_usage({name: SUMMARIES[name] for name in COMMANDS})
        return 0
    if args[0] in ("--version", "-V"):
        print(f"ftcli {__version__}")
        return 0
    command = args[0]
    if command not in COMMANDS:
        return _unknown_command(command, list(COMMANDS))
    overrides = normalise(command, args[1:], config_dir())
    job = job_for(command, overrides)
    if any(flag in overrides for flag in ("--help", "-h")):
        from ftcli.cli.help import print_command_help

        print_command_help(job.config_name, config_dir(), job.usage)
        return 0
    if unknown_flags(args[1:]):
        return _unknown_flags(job, command, args[1:])
    return _run(job, overrides)


def _unknown_command(command: str, commands: list[str]) -> int:
    from ftcli.errors import UsageError
    from ftcli.registry import did_you_mean

    return _report(UsageError(
        f"unknown command {command!r}{did_you_mean(command, commands)}",
        hint=f"usage: ftcli {{{','.join(commands)}}} [key=value ...]; `ftcli --help` lists the commands",
    ))


def _unknown_flags(job: Any, command: str, words: list[str]) -> int:
    """Refuse `--flags` that are not Hydra's, with the `key=value` override each one most likely meant."""
    import shlex

    from ftcli.cli.argv import flag_as_override, without_flags
    from ftcli.cli.precheck import known_settings
    from ftcli.cli.registered import register_configs
    from ftcli.errors import UsageError

    flags = unknown_flags(words)
    register_configs()
    settings, groups = known_settings(job, normalise(command, without_flags(words, flags), config_dir()), config_dir())
    meant = {flag: flag_as_override(flag, settings, groups) for flag in flags}
    named = ", ".join(flag.flag + (f" (did you mean {' or '.join(o)}?)" if o else "") for flag, o in meant.items())
    message = f"unknown flag{'s' if len(flags) > 1 else ''} {named}: ftcli takes settings as key=value"
    hint = f"`ftcli {job.usage} --help` lists the groups and settings; Hydra's flags (--cfg job, -m, --help) work as usual"
    if all(len(o) == 1 for o in meant.values()):
        fixed = list(words)
        for flag in reversed(flags):
            fixed[flag.at:flag.at + flag.size] = meant[flag]
        hint = " ".join(shlex.quote(word) for word in ["ftcli", command, *fixed])
    return _report(UsageError(message, hint=hint))


def _run(job: Any, overrides: list[str]) -> int:
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    from ftcli.cli.registered import register_configs
    from ftcli.errors import FtcliError

    register_configs()
    _mute_other_ranks()
    _warn_of_one_process_launch()
    try:
        if not any(flag in overrides for flag in HYDRA_FLAGS_WITHOUT_CHECK):
            from ftcli.cli.precheck import check_overrides

            check_overrides(job, overrides, config_dir())
        if job.config_name != "train":
            _check_job_dir(overrides)
    except FtcliError as exc:
        return _report(exc)
    overrides = _join_processes(overrides)
    GlobalHydra.instance().clear()
    before = _run_dir_before(job, overrides)
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=job.config_name)(
        lambda cfg: _run_job(job, cfg, before)
    )
    saved_argv = sys.argv
    saved_logging = _root_logging()
    sys.argv = [f"ftcli {job.config_name}", *overrides]
    from ftcli.engine import processes

    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code and processes.active():
            processes.leave(code)
        return code
    finally:
        sys.argv = saved_argv
        _end_command(saved_logging)
    processes.finish()
    return 0


# What the ranks of a distributed run other than the main one leave out: Hydra's record of the job
# and the job's log file, which the main process writes.
OTHER_RANKS_HYDRA = ("hydra.output_subdir=null", "~hydra.job_logging.handlers.file",
                     "hydra.job_logging.root.handlers=[console]")


def _mute_other_ranks() -> None:
    """Under `torchrun` or `accelerate launch`, the ranks but the main one print only their errors."""
    from ftcli import ui
    from ftcli.engine import processes

    if processes.launched() and _launch_rank() != 0:
        ui.mute(_launch_rank())


def _warn_of_one_process_launch() -> None:
    """`accelerate launch --num_processes N` on a machine without GPUs starts one process (it sets
    the rendezvous address for N, but no ranks): say how to get N."""
    from ftcli import ui
    from ftcli.engine import processes

    if "ACCELERATE_USE_CPU" in os.environ and "MASTER_ADDR" in os.environ and not processes.launched():
        ui.warn("accelerate launch started one process: without GPUs it starts several only with --multi_gpu "
                "(`accelerate launch --multi_gpu --num_processes N -m ftcli ...`, CPU processes joined by gloo), "
                "or use `torchrun --nproc_per_node N -m ftcli ...`")


def _launch_rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _join_processes(overrides: list[str]) -> list[str]:
    """The overrides this rank runs with: under a launch, the ranks but the main one leave Hydra's
    files to it. (The ranks join one process group once the job's config is known, `_start_processes`.)"""
    from ftcli.engine import processes

    if not processes.launched() or _launch_rank() == 0:
        return overrides
    return [*overrides, *OTHER_RANKS_HYDRA]


def _start_processes(cfg: Any) -> None:
    """Under a launch, join the other ranks (`ftcli.engine.processes`), with the collective timeout
    the job's `trainer.distributed.timeout_minutes` sets (30 minutes for a job without one)."""
    from datetime import timedelta

    from omegaconf import OmegaConf

    from ftcli.engine import processes

    if processes.launched() and not processes.active():
        minutes = OmegaConf.select(cfg, "trainer.distributed.timeout_minutes", default=30)
        processes.start(timedelta(minutes=minutes))


def _root_logging() -> tuple[list[Any], int]:
    """The root logger's handlers and level, as the caller has them before Hydra configures a job's."""
    import logging

    return list(logging.root.handlers), logging.root.level


def _end_command(saved_logging: tuple[list[Any], int]) -> None:
    """Undo what a command set up for itself in this process, so that the next command of a test or
    script starts as the first did: Hydra's global state and the job's config, status output on
    stdout, and the root logger as the caller had it (`_close_job_logs`)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from ftcli import ui

    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
    ui.use_stdout()
    _close_job_logs(*saved_logging)


def _close_job_logs(handlers: list[Any], level: int) -> None:
    """A job's log handlers end with the job: its log file is closed, so what this process prints
    later does not land in a finished run's log, and its console handler, bound to the `sys.stderr`
    of the job's start (which a caller may since have closed), is dropped. The root logger gets back
    the `handlers` and `level` it had before."""
    import logging

    for handler in list(logging.root.handlers):
        if handler not in handlers:
            handler.close()
            logging.root.removeHandler(handler)
    for handler in handlers:
        if handler not in logging.root.handlers:
            logging.root.addHandler(handler)
    logging.root.setLevel(level)


def _run_dir_before(job: Any, overrides: list[str]) -> Any:
    """For `train` with `hydra.run.dir=` given, that directory as it is before Hydra writes to it."""
    if job.config_name != "train" or any(flag in overrides for flag in ("-m", "--multirun")):
        return None
    from ftcli.runs.refusal import DirState

    folder = _given_path(overrides, "hydra.run.dir")
    return DirState.capture(folder) if folder is not None else None


def _check_job_dir(overrides: list[str]) -> None:
    """`eval`, `predict` and `export` write into their own `hydra.run.dir`; Hydra writes its record
    there before any check runs, so pointing it at the run they read is refused first."""
    from ftcli.errors import ConfigError

    job_dir = _given_path(overrides, "hydra.run.dir")
    if job_dir is not None and job_dir in _given_paths(overrides, "run_dir"):
        raise ConfigError(
            f"hydra.run.dir={job_dir} is the run directory being read: its .hydra/ record and metrics would be replaced",
            hint="drop hydra.run.dir (each command gets a folder of its own under outputs/), or name another folder",
        )


def _given_path(overrides: list[str], key: str) -> Path | None:
    """The absolute path an override `key=...` names, as Hydra reads it (relative to the working
    directory); None when not given, interpolated or malformed (Hydra reports that)."""
    paths = _given_paths(overrides, key, several=False)
    return paths[0] if paths else None


def _given_paths(overrides: list[str], key: str, several: bool = True) -> list[Path]:
    """The absolute paths an override `key=...` names, one or (`several`) a list of them, as Hydra reads
    them; none when not given, interpolated or malformed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [o for o in overrides if o.startswith(f"{key}=")]
    try:
        value = OverridesParser.create().parse_overrides(given[-1:])[0].value() if given else None
    except Exception:
        return []
    values = value if several and isinstance(value, list) else [value]
    paths = [v for v in values if isinstance(v, str) and "${" not in v]
    return [Path(v).expanduser().resolve() for v in paths] if len(paths) == len(values) else []


def _run_job(job: Any, cfg: Any, before: Any = None) -> Any:
    import warnings

    from hydra.core.hydra_config import HydraConfig

    from ftcli.cli.registered import to_typed
    from ftcli.config import schema
    from ftcli.engine import processes
    from ftcli.errors import FtcliError

    # Deprecation notices that libraries raise against each other are not the user's to act on.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|accelerate)\.")
    # PEFT's LN tuning wraps LayerNorm yet warns that it does not support it.
    warnings.filterwarnings("ignore", message="Unsupported layer type .*LayerNorm", category=UserWarning)
    _start_processes(cfg)
    output_dir = _shared_output_dir(Path(HydraConfig.get().runtime.output_dir))
    try:
        typed = to_typed(cfg, getattr(schema, job.schema))
        return job.runner(typed, output_dir)
    except FtcliError as exc:
        if job.config_name == "train" and exc.exit_code in REFUSALS and processes.is_main():
            from ftcli.runs.refusal import undo_refused_train

            undo_refused_train(output_dir, before, f"{HydraConfig.get().job.name}.log")
        raise SystemExit(_report(exc)) from exc
    except KeyboardInterrupt as exc:
        from ftcli import ui
        from ftcli.errors import EXIT_INTERRUPTED

        _print_error(
            "interrupted",
            "stopped at once; files and checkpoints are written whole or not at all, so none is half-written",
            "an interrupted `train` continues from its newest checkpoint with trainer.resume=auto",
            EXIT_INTERRUPTED,
        )
        raise SystemExit(EXIT_INTERRUPTED) from exc
    except Exception as exc:  # an unexpected failure: still a panel, with the way to see more
        from ftcli import ui

        if ui.debug_enabled():
            raise
        _print_error(
            "unexpected error",
            f"{type(exc).__name__}: {exc}",
            "run again with FTCLI_DEBUG=1 for the traceback, and report it if it looks like a bug",
            1,
        )
        raise SystemExit(1) from exc


def _shared_output_dir(own: Path) -> Path:
    """The main process's output directory, on every rank of a distributed run.

    Each rank's Hydra names the directory for itself (`${now:...}` may fall on either side of a
    second); the others take the main process's and drop the empty one their Hydra made.
    """
    from ftcli.engine import processes

    shared = Path(processes.broadcast(str(own)))
    if shared != own:
        try:
            own.rmdir()
        except OSError:  # not empty, or made by someone else: not ours to remove
            pass
    return shared


def _report(exc: Any) -> int:
    from ftcli import ui

    if exc.exit_code == EXIT_OK:  # NothingToDo: a plain message, not an error panel
        if _says_why(EXIT_OK, exc.message):
            ui.info(exc.message)
        return EXIT_OK
    if ui.debug_enabled():
        import traceback

        traceback.print_exception(exc)
    _print_error(exc.title, exc.message, exc.hint, exc.exit_code)
    return exc.exit_code


def _print_error(title: str, message: str, hint: str | None, code: int) -> None:
    """The error panel, once per failure of a distributed run: a rank whose failure another rank
    posted first, with the same message, leaves it to that rank."""
    from ftcli import ui

    if _says_why(code, f"{title}: {message}"):
        ui.print_error(title, message, hint)


def _says_why(code: int, message: str) -> bool:
    """Whether this process is the one to say why a distributed run ends: the first rank to fail
    posts its failure for the others (`ftcli.engine.processes`) and says it; a rank that fails after
    (a lost peer, most likely) ends with the first failure's code instead.

    Outside a launch this process is the only one. Before the ranks have joined (a config error
    found by every rank alike), rank 0 says it.
    """
    from ftcli.engine import processes

    if not processes.launched():
        return True
    if not processes.active():
        return _launch_rank() == 0
    if not processes.post_failure(code, message):
        processes.follow()  # another rank failed first: this failure (a lost peer, most likely) follows from it
    return True
