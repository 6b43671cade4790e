"""What produced a run: library versions and the ftcli source commit, written to `environment.json`.

A run directory read months later (or a result that does not reproduce) needs the versions that
made it: a new `transformers` can change tokenisation or a model's defaults.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from ftcli import __version__

LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "hydra-core", "safetensors", "tokenizers")


def environment() -> dict[str, Any]:
    """Versions of Python, ftcli and its main libraries, and the git commit of an ftcli source checkout."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"ftcli": __version__, "git_commit": _source_commit(), "python": platform.python_version(), **versions}


def _source_commit() -> str | None:
    """HEAD of the git checkout ftcli runs from (an editable install), with `-dirty` for local changes; else None."""
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")
