"""Encoded features on disk, one file per key: whole or absent, checked on every read.

An entry is one header line (`{"format", "key", "bytes", "sha256"}`) and a body: a JSON line
with the features' layout (`ftcli.data.feature_codec`) and the warnings encoding them gave, then
the binary columns the layout points into. It is
written under a temporary name and renamed into place, so a reader sees a whole entry or none,
whatever another process does at the time; one whose header, length, checksum or body does not
hold up (a disk fault, an edit, a format of another ftcli) is reported and treated as absent, so
its features are built again and the entry replaced, never served.

Processes that want the same missing entry (the jobs of a sweep, the ranks of a distributed run)
take its lock file in turn: the first builds it, the others wait and read what it wrote. Readers
take no lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcli.data import feature_codec
from ftcli.files import write_bytes_atomic

if TYPE_CHECKING:
    from filelock import BaseFileLock

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the entry layout or the codec changes: older entries then miss
ENV = "FTCLI_CACHE_DIR"
DEFAULT_DIR = "~/.cache/ftcli/features"
SUFFIX = ".features"


def cache_root(setting: str | None) -> Path:
    """The folder entries live in: `data.cache_dir`, else `$FTCLI_CACHE_DIR`, else `~/.cache/ftcli/features`."""
    return Path(setting or os.environ.get(ENV) or DEFAULT_DIR).expanduser()


@dataclass(frozen=True)
class Logged:
    """A warning encoding gave, kept with the features so that a hit says it again."""

    logger: str
    level: int
    message: str


@dataclass(frozen=True)
class Entry:
    features: list[dict[str, Any]]
    logged: list[Logged]


class FeatureStore:
    """The entries under one folder, by key (a hex digest)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / f"{key}{SUFFIX}"

    def read(self, key: str, report: bool = True) -> Entry | None:
        """The entry of `key`; None when there is none, or when it is damaged (then it says so, with `report`)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if report:
                log.warning("feature cache: %s could not be read (%s); encoding again", path, exc)
            return None
        try:
            return _parse(data, key)
        except (ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
            if report:
                log.warning("feature cache: %s is damaged (%s); encoding again and replacing it", path, exc)
            return None

    def write(self, key: str, entry: Entry) -> None:
        """Store `entry` under `key`, atomically.

        Raises:
            feature_codec.Unencodable: the features hold a value the format cannot read back the same.
            OSError: the folder cannot be written.
        """
        layout, blobs = feature_codec.encode_features(entry.features)
        manifest = {"layout": layout, "blobs": [len(blob) for blob in blobs],
                    "logged": [[note.logger, note.level, note.message] for note in entry.logged]}
        body = b"".join([json.dumps(manifest, ensure_ascii=False).encode("utf-8"), b"\n", *blobs])
        header = {"format": FORMAT, "key": key, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        write_bytes_atomic(self.path(key), json.dumps(header).encode("utf-8") + b"\n" + body)

    def lock(self, key: str) -> BaseFileLock:
        """`key`'s lock file (not yet taken): one process at a time builds a missing entry.

        Raises:
            OSError: the folder cannot be written.
        """
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / f"{key}.lock"))


def _parse(data: bytes, key: str) -> Entry:
    """The entry in `data`, once its header, length and checksum match; ValueError otherwise."""
    first, newline, body = data.partition(b"\n")
    if not newline:
        raise ValueError("no header line")
    header = json.loads(first)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"not an entry of format {FORMAT}")
    if header.get("key") != key:
        raise ValueError("it holds another key")
    if header.get("bytes") != len(body):
        raise ValueError(f"{len(body)} bytes of features where {header.get('bytes')} were written (cut short?)")
    if header.get("sha256") != hashlib.sha256(body).hexdigest():
        raise ValueError("its checksum does not match its contents")
    line, newline, data = body.partition(b"\n")
    manifest = json.loads(line)
    sizes = manifest["blobs"]
    if not newline or sum(sizes) != len(data):
        raise ValueError("its blobs do not fill it")
    ends = list(accumulate(sizes))
    blobs = [data[end - size:end] for end, size in zip(ends, sizes)]
    features = feature_codec.decode_features(manifest["layout"], blobs)
    return Entry(features, [Logged(str(name), int(level), str(message)) for name, level, message in manifest["logged"]])
