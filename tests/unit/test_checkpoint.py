"""Tests of ftcli.engine.checkpoint: complete folders only, rotation, round trip, refusals."""

from __future__ import annotations

import json

import pytest
import torch

from ftcli.engine.checkpoint import (
    LoopState,
    list_checkpoints,
    read_checkpoint,
    restore,
    resume_point,
    save_checkpoint,
)
from ftcli.errors import ConfigError, RunDirError


def setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model[0].weight.requires_grad_(False)  # frozen weights are not saved
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    return model, optimizer, scheduler


def test_round_trip_and_rotation(tmp_path):
    model, optimizer, scheduler = setup()
    for step in (2, 4, 6):
        save_checkpoint(tmp_path, model, optimizer, scheduler, LoopState(step=step), {"a": 1}, keep=2)
    (tmp_path / "checkpoints" / ".step-8.abc.tmp").mkdir()  # a save that was interrupted
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-4", "step-6"]
    fresh, fresh_optimizer, fresh_scheduler = setup()
    with torch.no_grad():
        fresh[1].weight.add_(1.0)
    checkpoint = read_checkpoint(list_checkpoints(tmp_path)[-1])
    assert restore(checkpoint, fresh, fresh_optimizer, fresh_scheduler).best_weights is None
    assert torch.equal(fresh[1].weight, model[1].weight)
    assert fresh_scheduler.state_dict()["last_epoch"] == scheduler.state_dict()["last_epoch"]
    assert checkpoint.step == 6


def test_resume_point_checks_the_settings(tmp_path):
    model, optimizer, scheduler = setup()
    assert resume_point(tmp_path, "auto", {"a": 1}) is None  # nothing yet: a fresh start
    save_checkpoint(tmp_path, model, optimizer, scheduler, LoopState(step=2), {"a": 1, "b": {"c": 2}}, 2)
    assert resume_point(tmp_path, "auto", {"a": 1, "b": {"c": 2}}).step == 2
    with pytest.raises(ConfigError, match="b.c"):
        resume_point(tmp_path, "auto", {"a": 1, "b": {"c": 3}})
    with pytest.raises(RunDirError, match="no checkpoint"):
        resume_point(tmp_path, str(tmp_path / "nowhere"), {"a": 1})


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    model, optimizer, scheduler = setup()
    save_checkpoint(tmp_path, model, optimizer, scheduler, LoopState(step=2), {}, 2)
    other = torch.nn.Linear(3, 1)
    with pytest.raises(RunDirError, match="does not fit"):
        restore(read_checkpoint(list_checkpoints(tmp_path)[0]), other, optimizer, scheduler)


def test_a_resumed_log_keeps_records_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    """SIGKILL may cut the log's last line short; the resumed run's log must still be whole jsonl."""
    from ftcli.commands.train import _start_log
    from ftcli.engine.checkpoint import Checkpoint, LoopState
    from ftcli.runs.directory import RunDir

    run = RunDir(tmp_path)
    records = [{"step": 2, "loss": 0.7}, {"step": 4, "loss": 0.6}, {"step": 4, "eval": {"accuracy": 0.5}},
               {"step": 6, "loss": 0.5}]
    run.log_file.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 8, "lo')
    _start_log(run, Checkpoint(tmp_path / "checkpoints" / "step-4", LoopState(step=4)))
    assert [json.loads(line) for line in run.log_file.read_text().splitlines()] == records[:3]
