"""Tests of ftcli.commands.summary: the few lines a command prints before it starts."""

from __future__ import annotations

import pytest

from ftcli.commands.summary import _flow, data_source, given_overrides
from ftcli.config.schema import DataConfig


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (DataConfig(), "the bundled sentiment sample"),
        (DataConfig(train_file="/d/train.jsonl", validation_file="/d/dev.jsonl"), "train /d/train.jsonl, validation /d/dev.jsonl"),
        (DataConfig(validation_file="/d/dev.jsonl"), "the bundled sentiment sample, validation /d/dev.jsonl"),
        (DataConfig(dataset="glue", dataset_config="sst2"), "glue (sst2) from the hub"),
    ],
)
def test_data_source_says_where_the_rows_come_from(data, expected):
    assert data_source(data, "sentiment") == expected


def test_data_source_without_the_sample_names_only_the_files():
    assert data_source(DataConfig(test_file="/d/test.csv"), "sentiment", use_sample=False) == "test /d/test.csv"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "null"), (True, "true"), (0.0001, "0.0001"), (["query", "value"], "[query, value]"),
     ({"a": 1}, "{a: 1}"), ("summarize: ", "'summarize: '"), ("/d/train.jsonl", "/d/train.jsonl")],
)
def test_values_are_written_as_overrides(value, expected):
    assert _flow(value) == expected


def test_outside_a_hydra_job_there_are_no_overrides(monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # an earlier in-process job leaves its config set
    assert given_overrides({"seed": 1}) == []
