"""A mean over units (rows, supervised tokens) of a figure a training step measures, such as the loss
of its adversarial pass, kept on the device between log records."""

from __future__ import annotations

import torch


class Tally:
    """The mean of `add`ed values, each weighted by the units it is a mean over, since the last `read`.

    Under `accelerate launch` each process reports its own micro-batches'.
    """

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.units: torch.Tensor | None = None

    def add(self, value: torch.Tensor, units: torch.Tensor) -> None:
        weighted = value.detach().float() * units
        self.total = weighted if self.total is None else self.total + weighted
        self.units = units if self.units is None else self.units + units

    def read(self) -> float | None:
        """The mean since the last read (a host sync), None when nothing was added; counting starts again."""
        if self.total is None or self.units is None:
            return None
        mean = float(self.total / self.units.clamp(min=1))
        self.total = self.units = None
        return round(mean, 6)
