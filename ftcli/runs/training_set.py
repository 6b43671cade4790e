"""The rows a run trains on: its training split as loaded and drawn (`data.shots_per_class`), and
the rows `data.augment` adds to it, rewrites through seq2seq runs (`ftcli.runs.rewrites`) and EDA
copies (`ftcli.data.augment`).

Only the training split grows; validation and test rows are never touched. Both kinds of new
rows are made from the split's own rows (EDA does not edit rewrites), rewrites first, as
`ftcli train` can make them before it seeds the model it trains: loading a rewriting run draws
from the global random state, and the EDA copies draw only from generators of their own. What
was done is said in one line and recorded in metrics.json (`train.training_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ftcli.config.schema import AugmentConfig, SynonymSource
from ftcli.data.augment import Eda, augment_rows, words_in
from ftcli.data.readers import Row
from ftcli.data.shots import Shots
from ftcli.data.splits import Splits
from ftcli.data.synonyms import SynonymTable, embedding_synonyms, merge_tables, read_synonyms
from ftcli.runs.rewrites import RewriteRun, rewrite_rows

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Vocabulary:
    """The model's tokenizer and its input embeddings: where embedding synonyms are looked up."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel

    def embeddings(self) -> torch.Tensor:
        """The input-embedding matrix, one row per token id."""
        return cast("torch.Tensor", self.model.get_input_embeddings().weight)


@dataclass
class TrainingSet:
    """The training split of `splits` as rows are added to it, and how it came to its size."""

    splits: Splits
    columns: list[str]  # the task's text columns, which augmentation rewrites
    originals: list[Row]  # the rows it was loaded (and drawn) with
    shots: Shots | None
    read: int  # rows loaded, after data.max_train_samples and before data.shots_per_class
    rewrites: int = 0
    rewrites_cached: bool = False
    eda: int = 0
    words: int | None = None  # words of the training texts EDA looked synonyms up for
    with_synonyms: int | None = None  # those of them it found a synonym for

    @classmethod
    def of(cls, splits: Splits, columns: list[str]) -> TrainingSet:
        rows = list(splits.rows.get("train", []))  # none held for a stream (data.streaming)
        return cls(splits, columns, rows, splits.shots, splits.shots.pool if splits.shots else len(rows))

    @property
    def total(self) -> int:
        return len(self.originals) + self.rewrites + self.eda

    def add_rewrites(self, runs: list[RewriteRun], cache: Path) -> None:
        """One rewrite of each original row through `runs`, kept in `cache` (none without runs)."""
        if not runs:
            return
        done = rewrite_rows(self.originals, self.columns, runs, cache)
        self.splits.rows["train"] = self.splits.rows["train"] + done.rows
        self.rewrites, self.rewrites_cached = len(done.rows), done.cached

    def add_eda_copies(self, cfg: AugmentConfig, seed: int, vocabulary: Vocabulary) -> None:
        """`cfg.copies` EDA copies of each original row (none with copies=0)."""
        if not cfg.copies:
            return
        synonyms: SynonymTable = {}
        if cfg.needs_synonyms():
            words = words_in(row[column] for row in self.originals for column in self.columns
                             if isinstance(row.get(column), str))
            synonyms = _synonyms(cfg, words, vocabulary)
            self.words, self.with_synonyms = len(words), sum(bool(synonyms.get(word)) for word in words)
        copies = augment_rows(self.originals, self.columns, Eda.of(cfg, synonyms), seed)
        self.splits.rows["train"] = self.splits.rows["train"] + copies
        self.eda = len(copies)

    def line(self) -> str:
        """What was done, in one line: `training rows: 360 → 8 (4 per class) + 5 rewrites + 24 EDA copies = 37`."""
        parts = [f"training rows: {self.read}"]
        if self.shots:
            parts.append(f"→ {self.shots.rows} ({self.shots.per_class} per class)")
        if self.rewrites or self.rewrites_cached:
            parts.append(f"+ {self.rewrites} rewrites" + (" (read back from the run directory)" if self.rewrites_cached
                                                          else ""))
        if self.words is not None:
            parts.append(f"+ {self.eda} EDA copies ({self.with_synonyms} of {self.words} words with synonyms)")
        elif self.eda:
            parts.append(f"+ {self.eda} EDA copies")
        return " ".join(parts) + f" = {self.total}"

    def record(self) -> dict[str, Any]:
        """`train.training_rows` of metrics.json."""
        return {
            "read": self.read,
            "shots_per_class": self.shots.per_class if self.shots else None,
            "drawn": self.shots.rows if self.shots else None,
            "rewrites": self.rewrites,
            "eda_copies": self.eda,
            "words": self.words,
            "words_with_synonyms": self.with_synonyms,
            "trained_on": self.total,
        }


def _synonyms(cfg: AugmentConfig, words: set[str], vocabulary: Vocabulary) -> SynonymTable:
    """The synonyms of `words` from the sources `data.augment.synonyms` lists, the file's first."""
    tables = []
    if SynonymSource.file in cfg.synonyms and cfg.synonyms_file:
        tables.append(read_synonyms(cfg.synonyms_file))
    if SynonymSource.embedding in cfg.synonyms:
        tables.append(embedding_synonyms(sorted(words), vocabulary.tokenizer, vocabulary.embeddings(),
                                         cfg.neighbours, cfg.min_similarity))
    return merge_tables(*tables)
