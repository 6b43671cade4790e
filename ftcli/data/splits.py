"""Loading the splits of a run: local files, a hub dataset, or the task's bundled sample.

Returns plain rows (lists of dicts) per split; tasks turn them into model inputs. A validation
split is carved from train, seeded, when the source has none; `data.max_train_samples` and then
`data.shots_per_class` cut the training split that is left (`ftcli.data.shots`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Optional, TypeVar

from ftcli.config.schema import DataConfig, MixSource
from ftcli.data.mixture import MixRecord, mixed_rows
from ftcli.data.readers import Row, read_rows
from ftcli.data.shots import Shots, shots_per_class
from ftcli.data.streaming import RowStream, stream_of
from ftcli.errors import DataError, first_line

log = logging.getLogger(__name__)
P = TypeVar("P", str, Optional[str])


@dataclass
class Splits:
    """Rows per split name (`train`, `validation`, `test`) and where each came from."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    shots: Shots | None = None  # what `data.shots_per_class` drew the training split down to
    mix: MixRecord | None = None  # what a `data.mix` training split was drawn from
    stream: RowStream | None = None  # the training rows of `data.streaming=true`, instead of rows["train"]

    def __contains__(self, split: str) -> bool:
        return split in self.rows

    def __getitem__(self, split: str) -> list[Row]:
        return self.rows[split]

    def labelled(self) -> Splits:
        """The splits a task takes its label set from: these, or with a stream (which is not read
        ahead) the validation split standing in for the training split."""
        if self.stream is None:
            return self
        return Splits({"train": self.rows["validation"]}, {"train": self.sources["validation"]})


def with_absolute_paths(cfg: DataConfig) -> DataConfig:
    """Local file and folder paths made absolute, so a saved config works from any directory."""
    from dataclasses import replace

    changes = {key: _found(getattr(cfg, key)) for key in ("train_file", "validation_file", "test_file", "dataset")}
    augment = cfg.augment
    augment = replace(augment, synonyms_file=_found(augment.synonyms_file),
                      rewrite_runs=[_found(path) for path in augment.rewrite_runs])
    mix = [replace(source, file=_found(source.file), dataset=_found(source.dataset)) for source in cfg.mix]
    return replace(cfg, **changes, augment=augment, mix=mix)


def _found(path: P) -> P:
    """`path` made absolute when it names something on disk; anything else (a hub id, `-`, null) as given."""
    if path and path != "-" and Path(path).expanduser().exists():
        return str(Path(path).expanduser().resolve())
    return path


def sample_dir(task_name: str) -> Path:
    """The folder of the bundled sample dataset for a task."""
    return Path(str(resources.files("ftcli") / "samples" / task_name))


def load_splits(cfg: DataConfig, task_name: str, seed: int, *, training: bool, use_sample: bool = True) -> Splits:
    """Load every split the source has, carving validation from train when it has none.

    Training needs a train split; evaluation drops it (it is read only to carve the same
    validation split training used). `use_sample=False` keeps the bundled sample out, for
    `eval` on files a user names.
    """
    files = _files(cfg, task_name, use_sample)
    streamed = files.pop("train", None) if cfg.streaming or cfg.mix else None  # not read whole
    loaded = _from_hub(cfg, with_train=not cfg.streaming) if cfg.dataset else _from_files(files)
    _add_training_source(loaded, cfg, streamed, seed, training)
    for split, rows in loaded.rows.items():
        if not rows:
            raise DataError(f"the {split} split ({loaded.sources[split]}) is empty", hint="give a file with at least one row")
    if "validation" not in loaded and "train" in loaded:
        _carve_validation(loaded, cfg.validation_ratio, seed)
    if training and "train" not in loaded and loaded.stream is None:
        raise DataError(
            "no training data: data.train_file is not set and data.dataset has no train split",
            hint="set data.train_file=PATH (or data.dataset=HUB_ID)",
        )
    if not training:
        loaded.rows.pop("train", None)
        if not loaded.rows:
            raise DataError("nothing to evaluate: no validation or test data", hint="set data.validation_file=PATH")
    _truncate(loaded, cfg)
    if cfg.shots_per_class is not None and "train" in loaded:
        _draw_shots(loaded, cfg.label_column, cfg.shots_per_class, seed, cfg.label_names)
    return loaded


def _files(cfg: DataConfig, task_name: str, use_sample: bool) -> dict[str, str]:
    files = {"train": cfg.train_file, "validation": cfg.validation_file, "test": cfg.test_file}
    if cfg.train_file is None and not cfg.mix and use_sample:
        bundled = sample_dir(task_name)
        for split in ("train", "validation"):
            if files[split] is None:
                found = sorted(bundled.glob(f"{split}.*"))
                if found:
                    files[split] = str(found[0])
    return {split: path for split, path in files.items() if path is not None}


def _from_files(files: dict[str, str]) -> Splits:
    loaded = Splits()
    for split, path in files.items():
        loaded.rows[split] = read_rows(path, f"data.{split}_file")
        loaded.sources[split] = path
    return loaded


def _add_training_source(loaded: Splits, cfg: DataConfig, train_file: str | None, seed: int, training: bool) -> None:
    """The training rows of a mixture (`data.mix`), drawn in memory, or the stream of
    `data.streaming=true`, whose validation split must come from elsewhere: a stream is never held
    whole, so none is carved from it."""
    if cfg.streaming:
        if "validation" not in loaded:
            raise DataError(
                "data.streaming=true needs a validation split that is not streamed: none is carved from "
                "a stream, which is never held whole",
                hint="set data.validation_file=PATH (or a data.dataset with a data.validation_split)",
            )
        if training:
            loaded.stream = stream_of(_streamed_sources(cfg, train_file), cfg.mix_stopping, seed, cfg.shuffle_buffer)
            loaded.sources["train"] = f"{loaded.stream.description} (streamed)"
        return
    if cfg.mix and (training or "validation" not in loaded):  # evaluation reads it only to carve validation
        rows, loaded.mix = mixed_rows(cfg.mix, cfg.mix_stopping, seed)
        loaded.rows["train"] = rows
        loaded.sources["train"] = f"data.mix of {len(cfg.mix)} sources"


def _streamed_sources(cfg: DataConfig, train_file: str | None) -> list[MixSource]:
    if cfg.mix:
        return list(cfg.mix)
    if cfg.dataset:
        return [MixSource(dataset=cfg.dataset, dataset_config=cfg.dataset_config, split=cfg.train_split)]
    if train_file is None:
        raise DataError("no training data to stream", hint="set data.train_file=PATH (a .jsonl or .parquet file)")
    return [MixSource(file=train_file)]


def _from_hub(cfg: DataConfig, with_train: bool = True) -> Splits:
    import datasets

    datasets.disable_progress_bars()
    names = {"train": cfg.train_split, "validation": cfg.validation_split, "test": cfg.test_split}
    try:
        available = datasets.get_dataset_split_names(cfg.dataset, cfg.dataset_config)
    except Exception as exc:  # datasets raises many types for a missing or unreachable dataset
        raise DataError(
            f"data.dataset={cfg.dataset!r} could not be loaded: {first_line(exc)}",
            hint="check the id (and data.dataset_config); offline, download it once with network access "
            "or point data.train_file/validation_file at local files",
        ) from exc
    loaded = Splits()
    for split, name in names.items():
        if name is None or (split == "train" and not with_train):
            continue
        if name not in available:
            if split == "train":
                raise DataError(f"data.dataset={cfg.dataset!r} has no split {name!r}; it has: {', '.join(available)}")
            continue
        dataset = datasets.load_dataset(cfg.dataset, cfg.dataset_config, split=name)
        loaded.rows[split] = dataset.to_list()
        loaded.sources[split] = f"{cfg.dataset}[{name}]"
    return loaded


def _carve_validation(loaded: Splits, ratio: float, seed: int) -> None:
    rows = loaded.rows["train"]
    if len(rows) < 2:
        raise DataError(f"cannot carve a validation split from {len(rows)} training row(s)", hint="set data.validation_file")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(rows) * ratio))
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    source = loaded.sources["train"]
    loaded.rows["validation"] = [rows[i] for i in val_idx]
    loaded.rows["train"] = [rows[i] for i in train_idx]
    loaded.sources["validation"] = f"{source} (held out {ratio:.0%}, seed {seed})"
    log.info("No validation split given: held out %d of %d training rows (seed %d)", n_val, len(rows), seed)


def _truncate(loaded: Splits, cfg: DataConfig) -> None:
    limits = {"train": cfg.max_train_samples, "validation": cfg.max_eval_samples, "test": cfg.max_eval_samples}
    for split, limit in limits.items():
        if limit is not None and split in loaded.rows:
            loaded.rows[split] = loaded.rows[split][:limit]


def _draw_shots(loaded: Splits, label_column: str, k: int, seed: int, label_names: list[str] | None) -> None:
    rows, source = loaded.rows["train"], loaded.sources["train"]
    drawn = shots_per_class(rows, label_column, k, seed, source, label_names)
    loaded.shots = Shots(k, len(drawn) // k, len(rows))
    loaded.rows["train"] = drawn
    loaded.sources["train"] = f"{source} ({k} per class, seed {seed})"


def require_columns(rows: list[Row], columns: dict[str, str], source: str) -> None:
    """Fail with the columns that exist when a configured column is missing from the first row."""
    found = list(rows[0]) if rows else []
    for setting, column in columns.items():
        if column not in found:
            raise DataError(
                f"{setting}={column!r} is not a column of {source}; columns found: {', '.join(map(str, found))}",
                hint=f"set {setting}=<one of those>",
            )
    for index, row in enumerate(rows):
        for setting, column in columns.items():
            if column not in row:
                raise DataError(f"{source}: record {index} has no {column!r} field ({setting})")


def text_field(row: Row, column: str, index: int, source: str) -> str:
    """`row[column]` when it is a string; otherwise a DataError naming the record and the column."""
    value = row[column]
    if not isinstance(value, str):
        raise DataError(
            f"{source}: record {index}: {column!r} is {type(value).__name__}, not text",
            hint=f"point the setting for {column!r} at a column of strings",
        )
    return value
