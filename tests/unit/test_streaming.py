"""Streamed training rows (`data.streaming`) and weighted mixtures of sources (`data.mix`): the order
is seeded, the proportions follow the weights, reading stays bounded, and a resumed stream gives
the batches an uninterrupted one would have."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter

import pytest
import torch

from ftcli.config.schema import (
    DataConfig,
    EvalStrategy,
    MixSource,
    MixStopping,
    Precision,
    TrainConfig,
    TrainerConfig,
)
from ftcli.data.mixture import mixed_rows
from ftcli.data.splits import load_splits
from ftcli.data.streaming import RowStream, StreamSource, shuffled, stream_of
from ftcli.engine.checkpoint import Checkpointing, read_checkpoint
from ftcli.engine.loop import Training, train_loop
from ftcli.engine.streams import FeatureStream, StreamBatches
from ftcli.errors import DataError
from tests.unit.test_loop import Quiet, Regressor, collate


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def counting_source(name, n, weight=1.0, limit=None):
    """A source of `n` rows `{"x": i, "source": name}` that fails the test when more than `limit` are read."""
    source = StreamSource(name, weight, lambda: iter(()))

    def rows():
        for i in range(n):
            if limit is not None and source.read >= limit:
                raise AssertionError(f"read past the {limit} rows needed")
            yield {"x": i, "source": name}

    source.open = rows
    return source


def stream(*sources, stopping=MixStopping.first_exhausted, seed=0, buffer=4):
    return RowStream(list(sources), stopping, seed, buffer)


def test_the_shuffle_buffer_is_seeded_and_loses_nothing():
    rows = [{"x": i} for i in range(50)]
    first = [r["x"] for r in shuffled(rows, 8, random.Random(1))]
    assert first == [r["x"] for r in shuffled(rows, 8, random.Random(1))]
    assert first != [r["x"] for r in shuffled(rows, 8, random.Random(2))]
    assert sorted(first) == list(range(50))
    assert all(x <= i + 8 for i, x in enumerate(first))  # a row leaves the buffer at most 8 places early
    assert [r["x"] for r in shuffled(rows, 1, random.Random(1))] == list(range(50))  # 1: the stream's order


def test_a_mixture_follows_its_weights_and_its_seed():
    def draws(seed):
        mixed = stream(counting_source("a", 7000, 0.7), counting_source("b", 3000, 0.3), seed=seed, buffer=1)
        return [row["source"] for row in itertools.islice(mixed.rows(), 5000)]  # within the first pass

    once = draws(3)
    assert abs(Counter(once)["a"] / len(once) - 0.7) < 0.02
    assert once == draws(3) and once != draws(4)


def test_in_memory_mixture_draws_by_weight_and_records_it(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}", "label": "x"} for i in range(2000)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"label": "y", "text": f"b{i}", "extra": i} for i in range(2000)])
    mix = [MixSource(file=a, weight=7), MixSource(file=b, weight=3)]
    rows, record = mixed_rows(mix, MixStopping.first_exhausted, 0)
    again, _ = mixed_rows(mix, MixStopping.first_exhausted, 0)
    assert rows == again and rows != mixed_rows(mix, MixStopping.first_exhausted, 1)[0]
    assert all(list(row) == ["text", "label"] for row in rows)  # the first source's columns
    share = sum(row["label"] == "x" for row in rows) / len(rows)
    assert abs(share - 0.7) < 0.03
    drawn = [source["rows_drawn"] for source in record.to_json()["sources"]]
    first = {"source": a, "weight": 0.7, "rows_available": 2000, "rows_drawn": drawn[0]}
    assert record.to_json()["sources"][0] == first
    assert drawn[0] == 2000 and drawn[1] < 2000 and sum(drawn) == len(rows)  # a ran out first
    every, _ = mixed_rows(mix, MixStopping.all_exhausted, 0)
    assert {row["text"] for row in every} == {f"{s}{i}" for s in "ab" for i in range(2000)}  # b oversampled


def test_all_exhausted_streams_every_row_before_the_pass_ends():
    mixed = stream(counting_source("a", 30, 0.9), counting_source("b", 5, 0.1), stopping=MixStopping.all_exhausted)
    seen, rows = set(), mixed.rows()
    for _ in range(200):
        row = next(rows)
        seen.add((row["source"], row["x"]))
        if len(seen) == 35:
            break
    assert len(seen) == 35


def test_a_source_missing_a_column_is_refused_with_the_columns_it_has(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "good", "label": "pos"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"review": "bad", "label": "neg"}])
    mix = [MixSource(file=a, weight=1), MixSource(file=b, weight=1)]
    for make in (lambda: mixed_rows(mix, MixStopping.first_exhausted, 0),
                 lambda: stream_of(mix, MixStopping.first_exhausted, 0, 10)):
        with pytest.raises(DataError) as error:
            make()
        assert f"data.mix[1] ({b}) has no column 'text'" in str(error.value)
        assert "its columns: review, label" in str(error.value)


def test_streaming_and_mix_settings_are_checked():
    problems = TrainConfig(data=DataConfig(streaming=True)).validate()
    assert problems[0].startswith("data.streaming=true needs trainer.max_steps")
    assert "set trainer.max_steps=N" in problems[0]
    assert not TrainConfig(data=DataConfig(streaming=True), trainer=TrainerConfig(max_steps=5)).validate()
    data = DataConfig(train_file="t.jsonl", mix=[MixSource(file="a.jsonl", weight=0), MixSource(weight=1)])
    problems = data.validate()
    assert "data.mix[0].weight=0 must be positive" in problems
    assert any(p.startswith("data.mix[1] must name exactly one of file or dataset") for p in problems)
    assert any(p.startswith("data.mix and data.train_file are both set") for p in problems)


def test_a_stream_needs_a_validation_split_it_is_not_carved_from(tmp_path):
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": "good", "label": "pos"}] * 3)
    with pytest.raises(DataError, match="needs a validation split that is not streamed"):
        load_splits(DataConfig(streaming=True, train_file=train), "sentiment", 0, training=True)
    splits = load_splits(DataConfig(streaming=True, train_file=train, validation_file=train), "sentiment", 0,
                         training=True)
    assert "train" not in splits and splits.stream is not None and splits.stream.read == 0  # nothing read yet


def test_parquet_streams_in_record_batches_and_other_formats_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{"text": f"r{i}", "label": i % 2} for i in range(3000)])
    pq.write_table(table, tmp_path / "t.parquet")
    rows = stream_of([MixSource(file=str(tmp_path / "t.parquet"))], MixStopping.first_exhausted, 0, 1)
    assert [row["text"] for row in itertools.islice(rows.rows(), 3001)][-2:] == ["r2999", "r0"]  # a second pass
    (tmp_path / "t.csv").write_text("text,label\ngood,1\n")
    with pytest.raises(DataError, match=r"data.streaming=true reads .jsonl and .parquet files, not '.csv'"):
        stream_of([MixSource(file=str(tmp_path / "t.csv"))], MixStopping.first_exhausted, 0, 1)


STREAMED = TrainerConfig(max_steps=8, batch_size=2, logging_steps=2, eval_strategy=EvalStrategy.no,
                         precision=Precision.fp32, save_every=3, keep_checkpoints=5)


def features(rows, source):
    return [{"input_ids": [row["x"] % 3, 1, 2, row["x"] % 5], "labels": float(row["x"] % 2)} for row in rows]


def streamed_training(model, rows, checkpoints):
    return Training(model, FeatureStream(rows, features, "test stream"), collate, 0.01, 0, lambda m: {}, Quiet(),
                    checkpoints=checkpoints)


def test_a_stream_reads_only_what_the_steps_need():
    needed = 8 * 2 + 4  # max_steps x batch_size, and the shuffle buffer ahead of them
    rows = stream(counting_source("a", 10_000, limit=needed), buffer=4)
    train_loop(streamed_training(Regressor(), rows, None), STREAMED)
    assert rows.read == needed


def test_a_resumed_stream_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    """7 rows a pass, 16 trained on: the resume at step 3 (row 6) continues into the passes after."""
    def rows():
        return stream(counting_source("a", 7), buffer=3, seed=5)

    torch.manual_seed(0)
    whole = Regressor()
    result = train_loop(streamed_training(whole, rows(), Checkpointing(tmp_path / "whole", 3, 5, {})), STREAMED)
    checkpoint = read_checkpoint(tmp_path / "whole" / "checkpoints" / "step-3")
    assert checkpoint.state.stream_rows == 6 and checkpoint.state.batches_in_epoch == 3
    torch.manual_seed(1)  # the resume must not depend on the fresh model's draw
    resumed = Regressor()
    again = train_loop(streamed_training(resumed, rows(), Checkpointing(tmp_path / "resumed", 3, 5, {}, checkpoint)),
                       STREAMED)
    assert [r["loss"] for r in result.history] == [r["loss"] for r in again.history]
    assert again.stream_rows == 16 and result.samples == again.samples == 16
    for a, b in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_each_process_keeps_every_world_th_batch_of_the_stream():
    rows = stream(counting_source("a", 9), buffer=2, seed=1)
    identity = FeatureStream(rows, lambda chunk, source: [row["x"] for row in chunk], "s")

    def batches(world, rank, n, skip=0):
        taken = StreamBatches(identity, 2, lambda f: {"x": torch.tensor(f)}, "cpu", world, rank)
        taken.skip = skip
        out = iter(taken)
        return [next(out)["x"].tolist() for _ in range(n)]

    alone = batches(1, 0, 6)
    assert batches(2, 0, 3) == alone[0::2] and batches(2, 1, 3) == alone[1::2]
    # resumed after one batch each (the loop's skip counts every process's batches): its own next batch
    assert batches(2, 1, 2, skip=2) == alone[3::2][:2]
