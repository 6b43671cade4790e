"""task=grpo samples completions inside training from torch's global random state: the same seed writes
the same completions and ends at the same weights, and a run stopped at a checkpoint and resumed ends
bit-identical to one never stopped."""

from __future__ import annotations

import json
import os
import signal

from ftcli.cli.main import main
from tests.integration.test_resume import read_json, weights

STEPS = ["task=grpo", "model=tiny_llama", "task.max_new_tokens=6", "task.num_generations=3", "trainer.batch_size=2",
         "data.max_train_samples=16", "data.max_eval_samples=4", "trainer.max_steps=4", "trainer.eval_strategy=steps",
         "trainer.eval_steps=2", "trainer.logging_steps=1", "trainer.save_every=100", "trainer.lr=3e-3",
         "task.rewards=[{name:length,target:3},{name:regex,pattern:'[0-9]'}]"]


def identical(a, b):
    return a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def logged(run):
    """The log records, without the training speed (which no two runs share)."""
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("samples_per_second", "tokens_per_second")} for r in records]


def test_the_same_seed_trains_to_the_same_weights_and_a_stopped_run_resumes_to_them(tmp_path, monkeypatch):
    from ftcli import ui
    from ftcli.errors import EXIT_INTERRUPTED

    whole, again, stopped = (tmp_path / name for name in ("whole", "again", "stopped"))
    assert main(["train", *STEPS, f"hydra.run.dir={whole}"]) == 0
    assert main(["train", *STEPS, f"hydra.run.dir={again}"]) == 0
    assert identical(weights(whole), weights(again))
    assert logged(whole) == logged(again)
    rewards = {r["reward"] for r in logged(whole) if "reward" in r}
    assert len(rewards) > 1  # the rewards differ between steps: the run learns from something

    on_step = ui.TrainProgress.on_step

    def press_ctrl_c_at_step_3(self, step, record):
        on_step(self, step, record)
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ui.TrainProgress, "on_step", press_ctrl_c_at_step_3)
    assert main(["train", *STEPS, f"hydra.run.dir={stopped}"]) == EXIT_INTERRUPTED
    assert [p.name for p in (stopped / "checkpoints").iterdir()] == ["step-3"]
    monkeypatch.setattr(ui.TrainProgress, "on_step", on_step)
    assert main(["train", *STEPS, "trainer.resume=auto", f"hydra.run.dir={stopped}"]) == 0
    assert read_json(stopped / "metrics.json")["validation"] == read_json(whole / "metrics.json")["validation"]
    assert identical(weights(whole), weights(stopped))
    resumed = [r for r in logged(stopped) if r["step"] > 3 and "eval" not in r]
    expected = [r for r in logged(whole) if r["step"] > 3 and "eval" not in r]
    assert resumed == expected  # the same completions after the stop
