"""Runs of the real CLI on the tiny BERT, shared by the integration tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from ftcli.cli.main import main

SMOKE = ["model=tiny_bert", "debug=smoke", "trainer.eval_batch_size=16"]
PROMPT_METHODS = {"prompt_tuning", "p_tuning", "prefix_tuning"}
NATIVE_METHODS = {"adapter", "lora_adapter", "lora_prefix"}  # saved in ftcli's adapter format
ADAPTER_METHODS = {"lora", "ia3", "ln_tuning"} | PROMPT_METHODS | NATIVE_METHODS
METHODS = [
    "full", "freeze", "bitfit", "lora", "ia3", "ln_tuning", "prompt_tuning", "p_tuning", "prefix_tuning",
    "adapter", "lora_adapter", "lora_prefix",
]


def train(run_dir: Path, *overrides: str) -> Path:
    code = main(["train", *SMOKE, f"hydra.run.dir={run_dir}", *overrides])
    assert code == 0, f"train exited {code}"
    return run_dir


class TrainedRuns(Mapping[str, Path]):
    """One finished tiny run per method on the bundled sentiment sample, trained when first asked for.

    A method that fails to train fails the tests that read its run, and only those: its failure is
    kept and raised again for each of them, and the other methods' runs are unaffected. Under
    pytest-xdist the runs live in a folder all workers share, and a lock per method makes one
    worker train it while the others wait and read the result.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.failures: dict[str, str] = {}

    def __getitem__(self, method: str) -> Path:
        if method not in METHODS:
            raise KeyError(method)
        return self.other(method, f"method={method}")

    def other(self, name: str, *overrides: str) -> Path:
        """The finished tiny run `name` of the settings `overrides` (`task=ner`), trained once as the
        methods' runs are."""
        from filelock import FileLock

        if name in self.failures:
            pytest.fail(self.failures[name], pytrace=False)
        run = self.root / name
        with FileLock(str(self.root / f"{name}.lock")):
            if not (run / "metrics.json").is_file():
                try:
                    train(run, *overrides, "overwrite=true")
                except AssertionError as exc:
                    self.failures[name] = f"the tiny {' '.join(overrides)} run could not be trained: {exc}"
                    raise
        return run

    def __iter__(self) -> Iterator[str]:
        return iter(METHODS)

    def __len__(self) -> int:
        return len(METHODS)


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> TrainedRuns:
    """Finished tiny runs by method name, shared by every test of the session (and every xdist worker)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "trained-runs"
    root.mkdir(exist_ok=True)
    return TrainedRuns(root)


@contextmanager
def ctrl_c_at_step(monkeypatch, when: int) -> Iterator[None]:
    """Inside, a training run gets SIGINT once its step `when` is done, as if Ctrl-C were pressed then."""
    from ftcli import ui

    on_step = ui.TrainProgress.on_step

    def press_ctrl_c(self, step, record):
        on_step(self, step, record)
        if step == when:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ui.TrainProgress, "on_step", press_ctrl_c)
    try:
        yield
    finally:
        monkeypatch.setattr(ui.TrainProgress, "on_step", on_step)
