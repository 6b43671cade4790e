"""Batch orders, optimiser parameter groups and learning-rate schedules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ftcli.config.schema import Scheduler, TrainerConfig
from ftcli.engine.batching import TrainBatches, sorted_batches
from ftcli.engine.optim import build_optimizer, build_scheduler

LENGTHS = [(i * 37) % 50 + 1 for i in range(500)]


def padded_tokens(batches, lengths):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_train_batches_cover_every_index_once_per_epoch():
    sampler = TrainBatches(LENGTHS, batch_size=16, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32
    assert sorted(i for b in batches for i in b) == list(range(500))


def test_train_batches_are_seeded_per_epoch():
    a, b = TrainBatches(LENGTHS, 16, seed=0), TrainBatches(LENGTHS, 16, seed=0)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(TrainBatches(LENGTHS, 16, seed=1)) != first


def test_length_grouping_cuts_padding():
    grouped = list(TrainBatches(LENGTHS, 16, seed=0, group_by_length=True))
    shuffled = list(TrainBatches(LENGTHS, 16, seed=0, group_by_length=False))
    assert padded_tokens(grouped, LENGTHS) < 0.75 * padded_tokens(shuffled, LENGTHS)


def test_sorted_batches_are_longest_first_and_complete():
    batches = sorted_batches(LENGTHS, 64)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))
    assert [LENGTHS[i] for i in flat] == sorted(LENGTHS, reverse=True)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)


def test_optimizer_skips_frozen_params_and_decays_only_matrices():
    model = Tiny()
    optimizer = build_optimizer(model, TrainerConfig(weight_decay=0.1), lr=1e-3)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and [p.shape for p in decay["params"]] == [torch.Size([3, 4])]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3  # linear bias, norm weight and bias
    assert all(p.requires_grad for g in optimizer.param_groups for p in g["params"])


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        (Scheduler.linear, [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]),
        (Scheduler.constant, [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
        (Scheduler.cosine, [0.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0]),
    ],
)
def test_schedules_warm_up_then_follow_their_shape(scheduler, expected):
    model = Tiny()
    cfg = TrainerConfig(scheduler=scheduler, warmup_ratio=2 / 6, fused_optimizer=False)
    optimizer = build_optimizer(model, cfg, lr=1.0)
    schedule = build_scheduler(optimizer, cfg, total_steps=6)
    seen = []
    for _ in range(7):
        seen.append(round(schedule.get_last_lr()[0], 4))
        optimizer.step()
        schedule.step()
    assert seen == expected


@pytest.mark.parametrize(
    ("metric", "given", "maximize"),
    [("accuracy", None, True), ("loss", None, False), ("eval_loss", None, False), ("loss", True, True),
     ("f1_macro", False, False)],
)
def test_direction_of_metric_for_best(metric, given, maximize):
    assert TrainerConfig(metric_for_best=metric, greater_is_better=given).maximize is maximize
