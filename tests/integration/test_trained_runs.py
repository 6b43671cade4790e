"""The shared trained runs: one method that cannot be trained fails its own tests and no others."""

from __future__ import annotations

import pytest

from tests.integration import conftest
from tests.integration.conftest import TrainedRuns


def test_a_method_that_fails_to_train_fails_alone(tmp_path, monkeypatch):
    calls = []

    def fake_train(run, *overrides):
        calls.append(overrides[0])
        if overrides[0] == "method=ia3":
            raise AssertionError("train exited 5")
        run.mkdir(parents=True)
        (run / "metrics.json").write_text("{}")
        return run

    monkeypatch.setattr(conftest, "train", fake_train)
    runs = TrainedRuns(tmp_path)
    with pytest.raises(AssertionError, match="exited 5"):
        runs["ia3"]
    assert runs["lora"] == tmp_path / "lora"
    with pytest.raises(pytest.fail.Exception, match="method=ia3 run could not be trained: train exited 5"):
        runs["ia3"]  # the failure is reported again, not retrained
    assert runs["lora"] == tmp_path / "lora"  # a finished run is not trained twice
    assert calls == ["method=ia3", "method=lora"]
    with pytest.raises(KeyError):
        runs["lorra"]
