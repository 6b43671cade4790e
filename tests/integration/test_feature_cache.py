"""The feature cache in the commands: a second run (a sweep's next job) reads what the first encoded,
eval reads what training encoded, and neither changes what the run computes."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import train


def metrics(run):
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.slow  # two tiny runs and an eval: about 8 s on two cores
def test_a_second_run_and_eval_read_the_features_the_first_run_encoded(tmp_path, capsys):
    cache = f"data.cache_dir={tmp_path / 'features'}"
    first = train(tmp_path / "full", cache)
    assert "train built" in capsys.readouterr().out and metrics(first)["train"]["feature_cache"] == {
        "train": "built", "validation": "built"}
    second = train(tmp_path / "bitfit", cache, "method=bitfit")  # another method: the same features
    out = capsys.readouterr().out
    assert "train hit" in out and "validation hit" in out
    assert metrics(second)["train"]["feature_cache"] == {"train": "hit", "validation": "hit"}
    assert main(["eval", f"run_dir={second}", f"hydra.run.dir={tmp_path / 'eval'}"]) == 0
    assert "validation hit" in capsys.readouterr().out
    assert metrics(tmp_path / "eval")["validation"] == metrics(second)["validation"]
    assert len(list((tmp_path / "features").glob("*.features"))) == 2
