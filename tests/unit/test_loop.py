"""The training loop on a tiny regression model: failure paths (non-finite loss, out of memory) and the best checkpoint."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ftcli.config.schema import EvalStrategy, Precision, TrainerConfig
from ftcli.engine.checkpoint import Checkpointing, list_checkpoints
from ftcli.engine.loop import Training, train_loop
from ftcli.engine.state import LoopState
from ftcli.errors import ConfigError, TrainingError


class Regressor(nn.Module):
    """y = w·x; its loss turns NaN from call `poison_at` on, or the call raises `fail_with`."""

    def __init__(self, poison_at: int | None = None, fail_with: BaseException | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.calls, self.poison_at, self.fail_with = 0, poison_at, fail_with

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> SimpleNamespace:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        loss = nn.functional.mse_loss(self.linear(input_ids.float()).squeeze(-1), labels)
        if self.poison_at is not None and self.calls >= self.poison_at:
            loss = loss * float("nan")
        return SimpleNamespace(loss=loss)


class Quiet:
    def on_train_begin(self, total_steps): ...
    def on_step(self, step, record): ...
    def on_evaluate(self, step, record): ...
    def on_train_end(self): ...


FEATURES = [{"input_ids": [i % 3, 1, 2, i % 5], "labels": float(i % 2)} for i in range(32)]
CFG = TrainerConfig(max_steps=8, batch_size=2, logging_steps=4, eval_strategy=EvalStrategy.no, precision=Precision.fp32,
                    save_every=2, keep_checkpoints=5, group_by_length=False)


def collate(rows):
    return {"input_ids": torch.tensor([r["input_ids"] for r in rows]), "labels": torch.tensor([r["labels"] for r in rows])}


def training(model, evaluate=lambda m: {}, checkpoints=None) -> Training:
    return Training(model, FEATURES, collate, 0.01, 0, evaluate, Quiet(), checkpoints=checkpoints)


def train(model, tmp_path, cfg=CFG):
    checkpoints = Checkpointing(tmp_path, cfg.save_every, cfg.keep_checkpoints, {})
    return train_loop(training(model, checkpoints=checkpoints), cfg)


def test_a_nan_loss_stops_before_it_reaches_a_checkpoint(tmp_path):
    """NaN from step 5: the step-6 checkpoint is never written (no log step came first) and the error names step 4's."""
    with pytest.raises(TrainingError) as raised:
        train(Regressor(poison_at=5), tmp_path)
    message = raised.value.message
    assert message.startswith("the training loss became nan by step 6 (lr ")
    assert f"the last good checkpoint, {tmp_path / 'checkpoints' / 'step-4'}, is kept" in message
    assert "trainer.lr" in raised.value.hint and "trainer.precision=fp32" in raised.value.hint
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-2", "step-4"]
    weights = load_file(str(tmp_path / "checkpoints" / "step-4" / "trainable.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_a_nan_loss_at_a_log_step_is_reported_there(tmp_path):
    with pytest.raises(TrainingError, match=r"became nan by step 4 \(lr .*\); the last good checkpoint, .*step-2"):
        train(Regressor(poison_at=3), tmp_path)


def test_a_finite_run_saves_its_checkpoints(tmp_path):
    result = train(Regressor(), tmp_path)
    assert result.step == 8 and math.isfinite(result.history[-1]["loss"])
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-2", "step-4", "step-6"]  # not at the last step


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 1234"),
    ],
    ids=["cuda", "cpu"],
)
def test_out_of_memory_suggests_gradient_accumulation(tmp_path, error):
    cfg = TrainerConfig(**{**vars(CFG), "batch_size": 8, "grad_accum_steps": 2})
    with pytest.raises(TrainingError) as raised:
        train(Regressor(fail_with=error), tmp_path, cfg)
    assert raised.value.message == "out of memory at step 1 with trainer.batch_size=8 (a batch of 8x4 tokens)"
    assert raised.value.hint.startswith("trainer.batch_size=4 trainer.grad_accum_steps=4 trains with the same effective batch")
    assert isinstance(raised.value.__cause__, type(error))


def test_other_runtime_errors_are_not_called_out_of_memory(tmp_path):
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train(Regressor(fail_with=RuntimeError("shape mismatch")), tmp_path)


def test_compiled_training_keeps_plain_weight_names_in_checkpoints(tmp_path):
    """trainer.compile compiles the forward pass only: checkpoints and results name the model's own weights."""
    cfg = TrainerConfig(**{**vars(CFG), "compile": True, "max_steps": 4})
    plain = TrainerConfig(**{**vars(CFG), "max_steps": 4})
    torch.manual_seed(0)
    compiled_model = Regressor()
    torch.manual_seed(0)
    plain_model = Regressor()
    result = train(compiled_model, tmp_path / "compiled", cfg)
    train(plain_model, tmp_path / "plain", plain)
    assert result.step == 4
    saved = load_file(str(tmp_path / "compiled" / "checkpoints" / "step-2" / "trainable.safetensors"))
    assert set(saved) == {"linear.weight", "linear.bias"}
    for a, b in zip(compiled_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "no")])
def test_bf16_only_where_the_hardware_has_it(monkeypatch, capsys, native, expected):
    from ftcli.engine import precision

    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    precision._bf16_fallback_notice.cache_clear()
    assert precision.mixed_precision(Precision.bf16) == expected
    captured = capsys.readouterr()
    assert ("no bf16 instructions" in captured.out + captured.err) is (not native)
    assert precision.mixed_precision(Precision.fp32) == "no"


BUDGET = TrainerConfig(**{**vars(CFG), "max_tokens_per_batch": 16, "max_steps": 10})  # rows of 4 tokens: 4 a batch


def test_a_token_budget_run_resumes_to_the_same_weights(tmp_path):
    """Budget batches are fixed for the run and shuffled per epoch, so a resume replays the same steps."""
    from ftcli.engine.checkpoint import read_checkpoint

    torch.manual_seed(0)
    whole = Regressor()
    result = train(whole, tmp_path / "whole", BUDGET)
    assert result.step == 10 and result.samples == 40  # into a second epoch of 8 batches
    torch.manual_seed(0)
    train(Regressor(), tmp_path / "first", BUDGET)
    torch.manual_seed(1)  # the resume must not depend on the fresh model's draw
    resumed = Regressor()
    checkpoint = read_checkpoint(tmp_path / "first" / "checkpoints" / "step-2")
    checkpoints = Checkpointing(tmp_path / "resumed", BUDGET.save_every, BUDGET.keep_checkpoints, {}, resume=checkpoint)
    train_loop(training(resumed, checkpoints=checkpoints), BUDGET)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


ACCUMULATING = TrainerConfig(**{**vars(CFG), "grad_accum_steps": 3, "max_steps": 10})  # 16 batches: 6 steps an epoch


@pytest.mark.parametrize("at", [4, 6], ids=["mid-epoch", "end-of-epoch"])
def test_an_accumulating_run_resumes_to_the_same_weights(tmp_path, at):
    """Windows of 3 batches, the epoch's last of 1: a checkpoint counts whole windows, so a resume
    mid-epoch or at an epoch's end replays the same steps."""
    from ftcli.engine.checkpoint import read_checkpoint

    torch.manual_seed(0)
    whole = Regressor()
    result = train(whole, tmp_path / "whole", ACCUMULATING)
    assert result.step == 10 and result.samples == 32 + 4 * 3 * 2
    torch.manual_seed(0)
    train(Regressor(), tmp_path / "first", ACCUMULATING)
    checkpoint = read_checkpoint(tmp_path / "first" / "checkpoints" / f"step-{at}")
    assert (checkpoint.state.epoch, checkpoint.state.batches_in_epoch) == (0, {4: 12, 6: 16}[at])
    torch.manual_seed(1)
    resumed = Regressor()
    checkpoints = Checkpointing(tmp_path / "resumed", None, 2, {}, resume=checkpoint)
    again = train_loop(training(resumed, checkpoints=checkpoints), ACCUMULATING)
    losses = [[(r["step"], r["loss"]) for r in run.history] for run in (result, again)]
    assert losses[0] == losses[1] and len(losses[0]) == 3  # steps 4, 8 and 10; the first from the checkpoint
    for a, b in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_token_budget_below_the_longest_row_is_refused(tmp_path):
    cfg = TrainerConfig(**{**vars(BUDGET), "max_tokens_per_batch": 3})
    with pytest.raises(ConfigError) as raised:
        train(Regressor(), tmp_path, cfg)
    assert raised.value.message == "trainer.max_tokens_per_batch=3: a row of 4 tokens does not fit in a budget of 3"
    assert raised.value.hint == "raise it to at least 4, or lower task.max_length"


def test_out_of_memory_with_a_token_budget_suggests_halving_it(tmp_path):
    error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(TrainingError) as raised:
        train(Regressor(fail_with=error), tmp_path, BUDGET)
    assert raised.value.message == "out of memory at step 1 with trainer.max_tokens_per_batch=16 (a batch of 4x4 tokens)"
    assert raised.value.hint.startswith("trainer.max_tokens_per_batch=8 trainer.grad_accum_steps=2 trains on about")


def best_of(evaluations: list[dict[str, float]], metric: str = "accuracy") -> LoopState:
    """The best of `evaluations` at steps 1, 2, ...; the model's weight holds the step it was evaluated at."""
    state, model, cfg = LoopState(), nn.Linear(1, 1), TrainerConfig(metric_for_best=metric)
    for step, metrics in enumerate(evaluations, start=1):
        with torch.no_grad():
            model.weight.fill_(step)
        state.step = step
        state.evaluated(metrics, model, cfg)
    return state


@pytest.mark.parametrize(
    ("metric", "evaluations", "kept"),
    [
        ("accuracy", [{"accuracy": 0.5, "loss": 0.7}, {"accuracy": 0.5, "loss": 0.6}], 2),  # tie: lower loss wins
        ("accuracy", [{"accuracy": 0.5, "loss": 0.6}, {"accuracy": 0.5, "loss": 0.6}], 1),  # full tie: earliest
        ("accuracy", [{"accuracy": 0.5, "loss": 0.6}, {"accuracy": 0.5, "loss": 0.7}], 1),
        ("accuracy", [{"accuracy": 0.5, "loss": 0.9}, {"accuracy": 0.4, "loss": 0.1}], 1),  # the metric comes first
        ("perplexity", [{"perplexity": 3.0, "loss": 1.2}, {"perplexity": 3.0, "loss": 1.1}], 2),  # lower is better
        ("perplexity", [{"perplexity": 3.0, "loss": 1.1}, {"perplexity": 3.0, "loss": 1.1}], 1),
        ("perplexity", [{"perplexity": 3.0, "loss": 0.1}, {"perplexity": 2.0, "loss": 1.1}], 2),
        ("mse", [{"mse": 0.2, "loss": None}, {"mse": 0.2, "loss": 0.1}], 1),  # no loss to compare: earliest
    ],
)
def test_a_tie_of_the_best_metric_goes_to_the_lower_loss_then_the_earliest(metric, evaluations, kept):
    best = best_of(evaluations, metric)
    assert best.best_step == kept and best.best_weights["weight"].item() == kept
    assert best.best_loss == evaluations[kept - 1]["loss"]
    assert best.bad_evals == len(evaluations) - kept


def test_a_resumed_run_breaks_ties_with_the_loss_it_saved(tmp_path):
    """The best evaluation's loss is in the checkpoint: after a resume a tie still compares against it
    (a best without a loss would keep step 2 against any tie)."""
    from ftcli.engine.checkpoint import read_checkpoint

    scripted = iter([{"accuracy": 0.5, "loss": 0.6}, {"accuracy": 0.5, "loss": 0.7}, {"accuracy": 0.5, "loss": 0.65}])
    cfg = TrainerConfig(**{**vars(CFG), "max_steps": 6, "eval_strategy": EvalStrategy.steps, "eval_steps": 2,
                           "metric_for_best": "accuracy"})
    checkpoints = Checkpointing(tmp_path, cfg.save_every, cfg.keep_checkpoints, {})
    first = train_loop(training(Regressor(), lambda m: next(scripted), checkpoints), cfg)
    assert first.best_step == 2
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "step-4")
    assert (checkpoint.state.best_value, checkpoint.state.best_loss, checkpoint.state.best_step) == (0.5, 0.6, 2)
    resumed_scripted = iter([{"accuracy": 0.5, "loss": 0.55}])
    resumed = train_loop(training(Regressor(), lambda m: next(resumed_scripted),
                                  Checkpointing(tmp_path / "resumed", None, 2, {}, resume=checkpoint)), cfg)
    assert resumed.best_step == 6 and resumed.best_value == 0.5
