"""Features encoded once and read back after: what a sweep's jobs and repeated runs share.

`FeatureCache.encode` is `Task.encode` through the store of `ftcli.data.feature_store`
(`data.cache`, `data.cache_dir`). The key is a digest of everything the features depend on:

- the rows themselves, as they reach `encode` (so data files, hub datasets, augmentation copies,
  shots and rewrites are covered by their contents, not their names), the source name and
  whether labels are read;
- what the task is bound to (`TaskKind.bind`): the task kind, the whole task config (with the
  settings `TaskConfig.for_model` took from the model), the data config (columns, label names),
  the label set in order, and the tokenizer's fingerprint (`ftcli.models.tokenizer_fingerprint`);
- the code that encodes: the cache format, ftcli's version and a digest of its source files, and
  the versions of `transformers` and `tokenizers`.

The frozen models a task is also bound to never reach its features: what it needs from them is
added by `Task.precompute`, after encoding, on every run. A task whose features come to depend on
anything else it holds must add that to the key here.

What encoding warned about (rows cut or left out) is kept with the features and said again on a
hit. Rows or features this format cannot hold exactly (a numpy value, say) are encoded as
always and not cached; a folder that cannot be written turns the cache off for the command,
with a warning. The cache never changes what a run computes, only how soon it has it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcli import ui
from ftcli.config.schema import DataConfig, TaskConfig, plain
from ftcli.data.feature_codec import Unencodable, to_json_value
from ftcli.data.feature_store import FORMAT, Entry, FeatureStore, Logged, cache_root
from ftcli.models.tokenizer_fingerprint import tokenizer_fingerprint

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ftcli.data.readers import Row
    from ftcli.tasks.base import Feature, Task

log = logging.getLogger(__name__)
CACHE_SETTINGS = ("cache", "cache_dir")  # where features are kept changes no feature
KEY_SHOWN = 8  # hex digits of a key in the status line


class Use(str, Enum):
    """Where one split's features came from."""

    hit = "hit"  # read back from the cache
    built = "built"  # encoded, and stored for next time
    uncached = "not cached"  # encoded; the rows or features hold values the cache cannot keep exactly
    off = "off"  # encoded; data.cache=false, or the folder cannot be written


@dataclass
class FeatureCache:
    """`task`'s encoding, cached: `task` must be the kind `kind_name` bound to exactly these
    `task_cfg`, `data`, `labels` and `tokenizer` (what its features depend on besides the rows)."""

    task: Task[Any]
    kind_name: str
    task_cfg: TaskConfig
    data: DataConfig
    labels: list[str]
    tokenizer: PreTrainedTokenizerBase
    uses: dict[str, tuple[Use, str]] = field(default_factory=dict)  # split → where from, and the key

    def __post_init__(self) -> None:
        self.root = cache_root(self.data.cache_dir)
        self.store = FeatureStore(self.root) if self.data.cache else None
        self._settings: Any = None

    def encode(self, split: str, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """`task.encode(rows, source, with_labels)`, read from the cache when it holds them."""
        if self.store is None:
            return self._record(split, Use.off, "", self.task.encode(rows, source, with_labels))
        try:
            key = self.key(rows, source, with_labels)
        except Unencodable as exc:
            log.info("features of %s are not cached: its rows or settings hold %s", split, exc)
            return self._record(split, Use.uncached, "", self.task.encode(rows, source, with_labels))
        entry = self.store.read(key)
        if entry is None:
            return self._build(split, key, rows, source, with_labels)
        _say_again(entry.logged)
        return self._record(split, Use.hit, key, entry.features)

    def encode_splits(self, rows: Mapping[str, list[Row]], sources: Mapping[str, str]) -> dict[str, list[Feature]]:
        """Every split's features (`encode`), then one status line saying where they came from."""
        features = {split: self.encode(split, split_rows, sources[split]) for split, split_rows in rows.items()}
        line = self.line()
        if line:
            ui.info(line, markup=False)
        return features

    def key(self, rows: list[Row], source: str, with_labels: bool) -> str:
        """The digest of `rows`, `source`, `with_labels` and every setting the features depend on.

        Raises:
            Unencodable: a row holds a value whose type the key cannot tell apart from others'.
        """
        if self._settings is None:
            self._settings = self._settings_digest()
        digest = self._settings.copy()
        digest.update(json.dumps([source, with_labels]).encode("utf-8"))
        digest.update(json.dumps(to_json_value(rows), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        return digest.hexdigest()

    def line(self) -> str | None:
        """One status line: where each split's features came from, with its key's first digits."""
        if not self.uses or all(use is Use.off for use, _ in self.uses.values()):
            return None
        splits = ", ".join(f"{split} {use.value}" + (f" {key[:KEY_SHOWN]}" if key else "")
                           for split, (use, key) in self.uses.items())
        return f"feature cache ({self.root}): {splits}"

    def record(self) -> dict[str, str]:
        """Per split, where its features came from (`hit`, `built`, `not cached`, `off`), for metrics.json."""
        return {split: use.value for split, (use, _) in self.uses.items()}

    def _build(self, split: str, key: str, rows: list[Row], source: str, with_labels: bool) -> list[Feature]:
        """Encode under the key's lock and store the features, unless another process stored them
        while this one waited for the lock."""
        assert self.store is not None
        try:
            lock = self.store.lock(key)
            lock.acquire()
        except OSError as exc:
            self._turn_off(exc)
            return self._record(split, Use.off, "", self.task.encode(rows, source, with_labels))
        try:
            entry = self.store.read(key, report=False)  # damage was reported by the read before the lock
            if entry is not None:
                _say_again(entry.logged)
                return self._record(split, Use.hit, key, entry.features)
            with _warnings_kept() as logged:
                features = self.task.encode(rows, source, with_labels)
            try:
                self.store.write(key, Entry(features, logged))
            except Unencodable as exc:
                log.info("features of %s are not cached: they hold %s", split, exc)
                return self._record(split, Use.uncached, "", features)
            except OSError as exc:
                self._turn_off(exc)
                return self._record(split, Use.off, "", features)
            return self._record(split, Use.built, key, features)
        finally:
            lock.release()

    def _record(self, split: str, use: Use, key: str, features: list[Feature]) -> list[Feature]:
        self.uses[split] = (use, key)
        return features

    def _turn_off(self, exc: OSError) -> None:
        ui.warn(f"feature cache: {self.root} cannot be written ({exc}); encoding without it "
                "(set data.cache_dir to a folder you can write to, or data.cache=false)")
        self.store = None

    def _settings_digest(self) -> Any:
        """A running digest of everything but the rows (the same for every split)."""
        import tokenizers
        import transformers

        from ftcli import __version__

        kind = type(self.task)
        data = plain(self.data)
        for name in CACHE_SETTINGS:
            data.pop(name)
        settings = {
            "ftcli": [__version__, _source_digest()],
            "libraries": [transformers.__version__, tokenizers.__version__],
            "task": [self.kind_name, f"{kind.__module__}.{kind.__qualname__}",
                     to_json_value(self.task_cfg, foreign=True)],
            "data": data,
            "labels": list(self.labels),
            "tokenizer": tokenizer_fingerprint(self.tokenizer),
        }
        digest = hashlib.sha256(f"ftcli features {FORMAT}\n".encode())
        digest.update(json.dumps(settings, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        return digest


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """A digest of ftcli's own source files: code that encodes differently never reads older entries."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class _Keeper(logging.Handler):
    """Keeps the warnings ftcli's loggers give while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kept: list[Logged] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append(Logged(record.name, record.levelno, record.getMessage()))


@contextmanager
def _warnings_kept() -> Iterator[list[Logged]]:
    """`with _warnings_kept() as logged:` the warnings ftcli gives inside the block, in order."""
    keeper = _Keeper()
    logging.getLogger("ftcli").addHandler(keeper)
    try:
        yield keeper.kept
    finally:
        logging.getLogger("ftcli").removeHandler(keeper)


def _say_again(logged: list[Logged]) -> None:
    """The warnings encoding gave when the entry was built, given again as they were."""
    for note in logged:
        if note.logger == ui.status_log.name:
            ui.warn(note.message)  # shown in the status output, as ui.warn showed it then
        else:
            logging.getLogger(note.logger).log(note.level, note.message)
