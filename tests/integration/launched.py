"""`ftcli` as one process of a test's distributed launch (`torchrun ... launched.py train ...`), with
what the test asks for through the environment:

FTCLI_TEST_NO_DROPOUT=1      tiny models without dropout, so one process and two draw the same numbers
FTCLI_TEST_FAIL_RANK=N       rank N raises a training error once step FTCLI_TEST_FAIL_STEP is done
FTCLI_TEST_KILL_STEP=K       rank 0 SIGKILLs itself once step K is done (the launcher then stops the others)
"""

from __future__ import annotations

import os
import sys


def _without_dropout() -> None:
    from ftcli.models import tiny

    build = tiny.tiny_config

    def no_dropout(arch, **overrides):
        config = build(arch, **overrides)
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "resid_pdrop", "embd_pdrop", "attn_pdrop"):
            if hasattr(config, key):
                setattr(config, key, 0.0)
        return config

    tiny.tiny_config = no_dropout


def _fail_on(rank: int, step: int) -> None:
    from ftcli import ui
    from ftcli.errors import TrainingError

    on_step = ui.TrainProgress.on_step

    def failing(self, done, record):
        on_step(self, done, record)
        if done == step and int(os.environ["RANK"]) == rank:
            raise TrainingError(f"injected failure on rank {rank} at step {step}")

    ui.TrainProgress.on_step = failing


def _kill_at(step: int) -> None:
    import signal

    from ftcli import ui

    on_step = ui.TrainProgress.on_step

    def killing(self, done, record):
        on_step(self, done, record)
        if done == step and int(os.environ["RANK"]) == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    ui.TrainProgress.on_step = killing


if __name__ == "__main__":
    if os.environ.get("FTCLI_TEST_NO_DROPOUT"):
        _without_dropout()
    if os.environ.get("FTCLI_TEST_FAIL_RANK"):
        _fail_on(int(os.environ["FTCLI_TEST_FAIL_RANK"]), int(os.environ["FTCLI_TEST_FAIL_STEP"]))
    if os.environ.get("FTCLI_TEST_KILL_STEP"):
        _kill_at(int(os.environ["FTCLI_TEST_KILL_STEP"]))
    from ftcli.cli.main import main

    sys.exit(main(sys.argv[1:]))
