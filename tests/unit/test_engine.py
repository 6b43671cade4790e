"""Batch orders, optimiser parameter groups and learning-rate schedules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ftcli.config.schema import Scheduler, TrainerConfig
from ftcli.engine.batching import TokenBudgetBatches, TrainBatches, sorted_batches
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


def test_token_budget_batches_fit_the_budget_and_cover_every_index_once():
    sampler = TokenBudgetBatches(LENGTHS, max_tokens=200, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(max(LENGTHS[i] for i in b) * len(b) <= 200 for b in batches)
    # as full as the budget allows: one more row of the batch's longest length would not fit
    assert all((len(b) + 1) * max(LENGTHS[i] for i in b) > 200 for b in sampler.batches[:-1])  # in length order
    longest, shortest = sampler.batches[0], sampler.batches[-1]
    assert [LENGTHS[i] for i in longest] == [50] * 4  # a few long rows, or many short ones
    assert len(shortest) > 20 and max(LENGTHS[i] for i in shortest) <= 200 // 20


def test_token_budget_batches_keep_their_count_and_shuffle_their_order_per_epoch():
    """Every epoch has the same number of steps (the schedule and resume depend on it)."""
    sampler = TokenBudgetBatches(LENGTHS, 200, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert len(first) == len(second) and first != second
    assert sorted(map(sorted, first)) == sorted(map(sorted, second))
    assert list(TokenBudgetBatches(LENGTHS, 200, seed=0)) == first
    assert list(TokenBudgetBatches(LENGTHS, 200, seed=1)) != first
    sampler.skip = 3
    assert list(sampler) == second[3:]


def test_a_row_longer_than_the_token_budget_is_refused():
    with pytest.raises(ValueError, match="a row of 50 tokens does not fit in a budget of 49"):
        TokenBudgetBatches(LENGTHS, 49, seed=0)


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


@pytest.mark.parametrize("training", [True, False])
def test_evaluating_hands_the_model_back_in_the_mode_it_found_even_after_an_error(training):
    from ftcli.engine.eval_mode import evaluating

    model = nn.Sequential(nn.Dropout(0.5)).train(training)
    with evaluating(model):
        assert not model.training and not model[0].training
    assert model.training is training and model[0].training is training
    with pytest.raises(RuntimeError), evaluating(model):
        raise RuntimeError("a failing batch")
    assert model.training is training
