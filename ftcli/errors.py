"""The errors ftcli reports to a person, and the exit code of each class.

Every error carries what went wrong, where, and what to do about it (`hint`). The CLI renders
them as a short panel without a traceback (`FTCLI_DEBUG=1` shows it).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_COMPOSE = 1  # Hydra could not compose the config (its own exit code)
EXIT_USAGE = 2  # unknown command or malformed command line
EXIT_CONFIG = 3  # the composed config failed ftcli's checks
EXIT_DATA = 4  # a data file or dataset could not be read or is unusable
EXIT_MODEL = 5  # a model or tokenizer could not be loaded or adapted
EXIT_RUN_DIR = 6  # a run directory is missing, incomplete or would be overwritten
EXIT_TRAINING = 7  # training failed: non-finite loss, or out of memory
EXIT_INTERRUPTED = 130  # stopped by SIGINT/SIGTERM (128 + SIGINT, as shells report Ctrl-C)


def first_line(exc: BaseException) -> str:
    """An exception's first line, for a one-line message; its type name when it has no text.

    Libraries (transformers, safetensors, datasets, OmegaConf) put the cause on the first line and
    context or tracebacks of their own below it.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class FtcliError(Exception):
    """Base class: an error with a message for a person and an optional hint."""

    exit_code = 1
    title = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(FtcliError):
    """A command line ftcli cannot read: an unknown command or flag."""

    exit_code = EXIT_USAGE
    title = "usage error"


class ConfigError(FtcliError):
    """One or more problems with the composed config, reported together."""

    exit_code = EXIT_CONFIG
    title = "config error"

    def __init__(self, problems: list[str] | str, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems:\n" + "\n".join(f"- {p}" for p in self.problems)
        super().__init__(message, hint)


class DataError(FtcliError):
    exit_code = EXIT_DATA
    title = "data error"


class ModelError(FtcliError):
    exit_code = EXIT_MODEL
    title = "model error"


class RunDirError(FtcliError):
    exit_code = EXIT_RUN_DIR
    title = "run directory error"


class TrainingError(FtcliError):
    exit_code = EXIT_TRAINING
    title = "training error"


class Interrupted(FtcliError):
    """Training stopped on request (Ctrl-C, SIGTERM) after saving a checkpoint to resume from."""

    exit_code = EXIT_INTERRUPTED
    title = "interrupted"


class NothingToDo(FtcliError):
    """Not a failure: the command found its work already done and changed nothing (exit 0)."""

    exit_code = EXIT_OK
    title = "nothing to do"
