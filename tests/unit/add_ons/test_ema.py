"""The moving average of the weights: it follows shadow ← d·shadow + (1−d)·param step by step,
every evaluation and the weights a run ends with are the average's, training itself goes on with
the weights it would have without it, and a checkpoint holds the average."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from ftcli.config.schema import EvalStrategy, TrainerConfig
from ftcli.engine import checkpoint
from ftcli.engine.add_ons import ema
from ftcli.engine.checkpoint import Checkpointing
from ftcli.engine.loop import Training, train_loop
from tests.unit.test_loop import CFG, FEATURES, Quiet, Regressor, collate

D = 0.8


def test_an_update_is_the_recurrence_and_a_swap_leaves_no_trace():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    model.bias.requires_grad_(False)
    shadows, expected = ema.start(model), model.weight.detach().clone()
    for _ in range(3):
        with torch.no_grad():
            model.weight.add_(torch.randn(2, 3))
        ema.update(shadows, model, D)
        expected = D * expected + (1 - D) * model.weight.detach()
    assert list(shadows) == ["weight"]  # the trainable weights only
    assert torch.allclose(shadows["weight"], expected, rtol=0, atol=1e-7)
    own = model.weight.detach().clone()
    with ema.swapped_in(shadows, model):
        assert torch.equal(model.weight, shadows["weight"])
    assert torch.equal(model.weight, own)


class Watched(Quiet):
    """Keeps the trainable weights after every optimiser step."""

    def __init__(self, model):
        self.model, self.steps = model, []

    def on_step(self, step, record):
        self.steps.append({n: p.detach().clone() for n, p in self.model.named_parameters()})


def run(cfg: TrainerConfig, tmp_path=None):
    torch.manual_seed(0)
    model = Regressor()
    watched, evaluated = Watched(model), []

    def evaluate(m):
        evaluated.append({n: p.detach().clone() for n, p in m.named_parameters()})
        return {"loss": float(len(evaluated))}  # each evaluation worse than the last: the first is the best

    checkpoints = Checkpointing(tmp_path, cfg.save_every, 5, {}) if tmp_path else None
    state = train_loop(Training(model, FEATURES, collate, 0.05, 0, evaluate, watched, checkpoints=checkpoints), cfg)
    return model, watched.steps, evaluated, state


def averages(steps, start):
    """The recurrence over the weights after each step, from the weights before the first."""
    shadow, out = {n: t.clone() for n, t in start.items()}, []
    for weights in steps:
        shadow = {n: D * shadow[n] + (1 - D) * weights[n] for n in shadow}
        out.append(shadow)
    return out


def close(a, b):
    return a.keys() == b.keys() and all(torch.allclose(a[n], b[n], rtol=0, atol=1e-6) for n in a)


def test_training_is_unchanged_and_evaluations_and_the_end_see_the_average(tmp_path):
    torch.manual_seed(0)
    start = {n: p.detach().clone() for n, p in Regressor().named_parameters()}
    plain = TrainerConfig(**{**vars(CFG), "eval_strategy": EvalStrategy.steps, "eval_steps": 4,
                             "metric_for_best": "loss", "save_every": None})
    _, raw_steps, _, _ = run(plain)
    model, steps, evaluated, state = run(TrainerConfig(**{**vars(plain), "ema": D}))
    assert all(torch.equal(a[n], b[n]) for a, b in zip(raw_steps, steps) for n in a)  # the same training
    expected = averages(steps, start)
    assert len(evaluated) == 2 and close(evaluated[0], expected[3]) and close(evaluated[1], expected[7])
    assert state.best_step == 4  # the best evaluation's weights are the average at step 4
    assert close(dict(model.named_parameters()), expected[3])
    assert close(state.ema_weights, expected[7])


def test_without_evaluations_a_run_ends_with_the_average_and_checkpoints_hold_it(tmp_path):
    torch.manual_seed(0)
    start = {n: p.detach().clone() for n, p in Regressor().named_parameters()}
    model, steps, evaluated, _ = run(TrainerConfig(**{**vars(CFG), "ema": D}), tmp_path)
    expected = averages(steps, start)
    assert not evaluated and close(dict(model.named_parameters()), expected[-1])
    saved = load_file(str(tmp_path / checkpoint.CHECKPOINTS / "step-4" / checkpoint.EMA))
    assert close(saved, expected[3])


def test_a_decay_too_slow_for_the_run_is_warned_of(monkeypatch):
    from ftcli import ui

    warned = []
    monkeypatch.setattr(ui, "warn", warned.append)
    ema.check_span(0.5, 8)  # the starting weights hold 0.5^8 = 0.4% of the average at the end
    assert not warned
    ema.check_span(0.999, 200)
    assert warned == ["trainer.ema=0.999: after the run's 200 steps the weights it starts from still hold 82% of "
                      "the average that is evaluated and saved; lower trainer.ema to 0.985 or less (they then hold "
                      "at most 5%), or train for longer"]
