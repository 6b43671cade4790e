"""Files that are whole or absent: atomic writes and staged folders, with the modes the umask gives.

A killed process never leaves a half-written file or folder behind: each is written under a
temporary name beside its target and renamed into place, which the file system does at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    """The process's umask, which `open()` and `mkdir()` apply to what they create.

    Linux reports it in /proc/self/status; elsewhere it is read by setting and restoring it, which
    other threads could see for that instant.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_normal_modes(folder: Path) -> None:
    """Give `folder` and everything in it the modes a plain `mkdir()` and `open()` would, under the umask.

    `tempfile.mkdtemp` makes folders 0700, and files written to a temporary name and renamed into
    place keep `mkstemp`'s 0600 (safetensors writes its files that way), which would hide a run's
    weights from the other users of a shared machine whatever their umask allows.
    """
    mask = _umask()
    os.chmod(folder, 0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for names, mode in ((dirs, 0o777), (files, 0o666)):
            for name in names:
                path = os.path.join(root, name)
                if not os.path.islink(path):  # chmod would follow it out of the folder
                    os.chmod(path, mode & ~mask)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """A temporary folder beside `final` that replaces it only if the block succeeds, with the
    modes a plain `mkdir()` and `open()` would have given it and what the block wrote."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        give_normal_modes(tmp)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        try:
            tmp.rename(final)
        except BaseException:
            if old is not None:
                old.rename(final)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
