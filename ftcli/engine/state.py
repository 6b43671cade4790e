"""Where a training run stands: the one record the loop keeps, a checkpoint saves and restores
whole, and `train_loop` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ftcli.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ftcli.config.schema import TrainerConfig


TENSOR_FIELDS = ("best_weights", "ema_weights")  # kept in safetensors files beside `state.json`


@dataclass
class LoopState:
    """Progress, the running loss, the best evaluation so far and the history of one training run.

    Everything but the tensors is what a checkpoint's `state.json` holds; `best_weights`, a CPU
    copy of the trainable weights at the best evaluation, goes to `best.safetensors`, and
    `ema_weights`, the moving average of the weights with `trainer.ema` (`ftcli.engine.add_ons.ema`),
    to `ema.safetensors`.

    Evaluations are ranked by `trainer.metric_for_best`; on a tie the lower validation `loss`
    wins, then the earlier evaluation. A metric such as accuracy on a small validation split ties
    often, and the loss still tells the better fitted of the tied weights apart.
    """

    step: int = 0  # optimiser steps taken
    epoch: int = 0
    batches_in_epoch: int = 0  # loader batches of `epoch` already consumed, a whole number of optimiser steps
    samples: int = 0
    train_seconds: float = 0.0  # time spent training, without evaluations and checkpoints
    running_loss: float | torch.Tensor = 0.0  # sum of the step losses since the last log record (on the device while training)
    running_count: int = 0  # optimiser steps summed in `running_loss`
    running_figures: dict[str, float] = field(default_factory=dict)  # other sums since the last log record, by name
    best_value: float | None = None
    best_loss: float | None = None  # the best evaluation's validation loss, which breaks ties
    best_step: int | None = None
    bad_evals: int = 0  # evaluations since the best one, for early stopping
    stopped_early: bool = False
    epochs: float = 0.0  # optimiser steps in epochs
    history: list[dict[str, Any]] = field(default_factory=list)
    best_weights: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)
    ema_weights: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)
    stream_rows: int | None = None  # data.streaming: rows of the stream read into the batches trained on
    tokens: int = 0  # real (not padding) tokens of the batches trained, all processes (`ftcli.engine.throughput`)
    token_slots: int = 0  # token positions those batches held, padding included

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        """The fields `state.json` holds (all but the tensors), as JSON values."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in TENSOR_FIELDS}
        return {**values, "running_loss": float(values["running_loss"]), "history": list(self.history)}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> LoopState:
        """A state read back from `state.json`; a key this version does not know is an error (TypeError)."""
        return cls(**values)

    def evaluated(self, metrics: dict[str, Any], model: nn.Module, cfg: TrainerConfig) -> None:
        """Record the evaluation at `self.step`: a new best keeps a copy of the trainable weights;
        `stopped_early` is set once `trainer.early_stopping_patience` evaluations brought no gain."""
        name = cfg.metric_for_best
        if name not in metrics or not isinstance(metrics[name], (int, float)):
            numeric = [k for k, v in metrics.items() if isinstance(v, (int, float))]
            raise ConfigError(
                f"trainer.metric_for_best={name!r} is not among the validation metrics",
                hint=f"choose one of: {', '.join(numeric)}",
            )
        value, loss = float(metrics[name]), _loss_of(metrics)
        if self._beats(value, loss, cfg.maximize):
            self.best_value, self.best_loss, self.best_step, self.bad_evals = value, loss, self.step, 0
            self.best_weights = {
                n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad
            }
        else:
            self.bad_evals += 1
        patience = cfg.early_stopping_patience
        self.stopped_early = patience is not None and self.bad_evals >= patience

    def _beats(self, value: float, loss: float | None, maximize: bool) -> bool:
        """Whether an evaluation scoring `value` (validation loss `loss`) is better than the best so far."""
        if self.best_value is None:
            return True
        if value != self.best_value:
            return value > self.best_value if maximize else value < self.best_value
        return loss is not None and self.best_loss is not None and loss < self.best_loss

    def restore_best(self, model: nn.Module) -> None:
        """Put the best evaluation's weights back into `model`, when there was an evaluation."""
        import torch

        if self.best_weights is None:
            return
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, saved in self.best_weights.items():
                params[name].copy_(saved)


def _loss_of(metrics: dict[str, Any]) -> float | None:
    """The validation loss of an evaluation, when it has one (splits without labels have none)."""
    loss = metrics.get("loss")
    return float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else None
