"""Training and inference run without cuDNN attention on a GPU (its per-shape plans cost ~0.5 s each)."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import torch
from torch import nn

from ftcli.config.schema import EvalStrategy, Precision, TrainerConfig
from ftcli.engine import loop
from ftcli.engine.attention import variable_length_attention
from ftcli.engine.inference import run_inference
from ftcli.engine.loop import Training, train_loop
from ftcli.tasks import pipeline

BACKENDS = ("cudnn_sdp_enabled", "flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled")


def backends() -> dict[str, bool]:
    return {name: getattr(torch.backends.cuda, name)() for name in BACKENDS}


def test_on_a_gpu_cudnn_attention_is_off_inside_and_restored_after(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    before = backends()
    assert before["cudnn_sdp_enabled"]  # PyTorch's default, which the context changes
    with variable_length_attention():
        assert backends() == {"cudnn_sdp_enabled": False, "flash_sdp_enabled": True,
                              "mem_efficient_sdp_enabled": True, "math_sdp_enabled": True}
    assert backends() == before


def test_without_a_gpu_nothing_changes(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = backends()
    with variable_length_attention():
        assert backends() == before


class Recorder(nn.Module):
    """A regression model that notes, at each forward pass, whether the attention context was entered."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.seen: list[bool] = []

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, **_: object) -> SimpleNamespace:
        self.seen.append(ENTERED[-1])
        logits = self.linear(input_ids.float())
        loss = nn.functional.mse_loss(logits.squeeze(-1), labels) if labels is not None else None
        return SimpleNamespace(loss=loss, logits=logits)


ENTERED = [False]


@contextmanager
def recording():
    ENTERED.append(True)
    try:
        yield
    finally:
        ENTERED.pop()


def collate(rows):
    batch = {"input_ids": torch.tensor([r["input_ids"] for r in rows])}
    if "labels" in rows[0]:
        batch["labels"] = torch.tensor([r["labels"] for r in rows])
    return batch


class Quiet:
    def on_train_begin(self, total_steps): ...
    def on_step(self, step, record): ...
    def on_evaluate(self, step, record): ...
    def on_train_end(self): ...


class Regression:
    """The part of a task `pipeline.split_scores` drives: outputs from `run_inference`, scored by their loss."""

    def outputs(self, model, features, batch_size, autocast, streamer=None):
        return run_inference(model, features, collate, batch_size, autocast)

    def scores(self, outputs, features):
        return {"loss": outputs.loss}


def test_training_and_inference_run_inside_it(monkeypatch):
    monkeypatch.setattr(loop, "variable_length_attention", recording)
    monkeypatch.setattr(pipeline, "variable_length_attention", recording)
    features = [{"input_ids": [i, 1], "labels": float(i % 2)} for i in range(8)]
    model = Recorder()
    cfg = TrainerConfig(max_steps=3, batch_size=2, eval_strategy=EvalStrategy.no, precision=Precision.fp32,
                        save_every=None, group_by_length=False)
    train_loop(Training(model, features, collate, 0.01, 0, lambda m: {}, Quiet()), cfg)
    assert model.seen == [True] * 3
    model.seen.clear()
    pipeline.split_scores(Regression(), model, [{"input_ids": [1, 2]}] * 3, 2, Precision.fp32)
    assert model.seen == [True, True]
    assert ENTERED == [False]
