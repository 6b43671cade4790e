"""The feature cache's cold and warm encode times against plain encoding, on a real-sized dataset.

The rows are SST-2's training split (67,349 sentences) and its dev split, read as `ftcli train
task=sentiment data.train_file=... data.validation_file=...` reads them, and encoded with the
embedded MiniLM's tokenizer by the bound sentiment task. Three ways, each `--repeats` times
(the median is shown), in this one process:

- `plain`: `Task.encode`, what a run without the cache (`data.cache=false`) does;
- `cold`: through `FeatureCache` into an empty folder: encoding, plus the key and the write;
- `warm`: through `FeatureCache` again, as the next run or sweep job does: the key and the read.

Each cold and warm pass starts from a fresh `FeatureCache` and recomputes the digest of ftcli's
sources, as a new process would. Without `--data-dir` (or when it is absent) the task's bundled
sample is replicated `--replicate` times instead.

    python scripts/bench_cache.py
    python scripts/bench_cache.py --data-dir ../shared/data/sst2 --repeats 5
    python scripts/bench_cache.py --data-dir none --replicate 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA),
                        help="folder with train.jsonl and dev.jsonl (`text`, `label`); `none`: the bundled sample")
    parser.add_argument("--replicate", type=int, default=100, help="copies of the bundled sample when no data folder")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def load(args: argparse.Namespace) -> tuple[Any, dict[str, list[dict[str, Any]]], dict[str, str], str]:
    """The bound sentiment task, its rows and sources per split, and where they came from."""
    from ftcli.config.schema import EMBEDDED_MODEL, DataConfig, ModelConfig
    from ftcli.data.splits import load_splits
    from ftcli.models.loading import build_tokenizer
    from ftcli.tasks import TASKS

    data_dir = Path(args.data_dir)
    if args.data_dir != "none" and (data_dir / "train.jsonl").is_file():
        data = DataConfig(train_file=str(data_dir / "train.jsonl"), validation_file=str(data_dir / "dev.jsonl"))
        where = str(data_dir)
    else:
        data = DataConfig()
        where = f"the bundled sentiment sample x{args.replicate}"
    entry = TASKS.get("sentiment")
    cfg, kind = entry.config_cls(name="sentiment"), entry.impl
    splits = load_splits(data, "sentiment", 42, training=True)
    rows = dict(splits.rows)
    if args.data_dir == "none" or not (data_dir / "train.jsonl").is_file():
        rows = {split: split_rows * args.replicate for split, split_rows in rows.items()}
    labels = kind.label_names(splits, cfg, data)
    tokenizer = build_tokenizer(ModelConfig(EMBEDDED_MODEL))
    return (cfg, data, labels, tokenizer, kind.bind(cfg, data, labels, tokenizer)), rows, dict(splits.sources), where


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    args = parse_args()
    from dataclasses import replace

    from ftcli.runs import cached_features
    from ftcli.runs.cached_features import FeatureCache

    (cfg, data, labels, tokenizer, task), rows, sources, where = load(args)

    def plain() -> dict[str, Any]:
        return {split: task.encode(split_rows, sources[split]) for split, split_rows in rows.items()}

    def cached(folder: str) -> tuple[dict[str, Any], FeatureCache]:
        cached_features._source_digest.cache_clear()
        cache = FeatureCache(task, "sentiment", cfg, replace(data, cache_dir=folder), labels, tokenizer)
        return {split: cache.encode(split, split_rows, sources[split]) for split, split_rows in rows.items()}, cache

    times: dict[str, list[float]] = {"plain": [], "cold": [], "warm": []}
    fresh = plain()  # once untimed: the tokenizer's first call pays for setting itself up
    size = 0
    for _ in range(args.repeats):
        times["plain"].append(timed(plain)[0])
        with tempfile.TemporaryDirectory(prefix="ftcli-bench-cache-") as folder:
            seconds, (cold, cache) = timed(lambda: cached(folder))
            times["cold"].append(seconds)
            assert {use for use, _ in cache.uses.values()} == {cached_features.Use.built}, cache.uses
            size = sum(path.stat().st_size for path in Path(folder).glob("*.features"))
            seconds, (warm, cache) = timed(lambda: cached(folder))
            times["warm"].append(seconds)
            assert {use for use, _ in cache.uses.values()} == {cached_features.Use.hit}, cache.uses
            assert cold == fresh and warm == fresh, "the cache gave other features than encoding"

    count = sum(len(split_rows) for split_rows in rows.values())
    base = statistics.median(times["plain"])
    print(f"\nsentiment features of {count:,} rows ({', '.join(f'{s}: {len(r):,}' for s, r in rows.items())}) "
          f"from {where}; MiniLM tokenizer; median of {args.repeats}; cache entries {size / 1e6:.1f} MB\n")
    print("| mode | seconds | rows/s | time vs plain |")
    print("| --- | ---: | ---: | ---: |")
    for mode, values in times.items():
        median = statistics.median(values)
        print(f"| {mode} | {median:.3f} | {count / median:,.0f} | {median / base:.2f}x |")
    print(f"\nwarm is {base / statistics.median(times['warm']):.2f}x faster than plain encoding; "
          f"cold costs {statistics.median(times['cold']) / base:.2f}x plain")


if __name__ == "__main__":
    main()
