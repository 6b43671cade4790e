"""Batch orders: length-grouped shuffles for training, length-sorted batches for inference.

Padding to the longest sequence in a batch costs compute for every pad token; grouping rows of
similar length into a batch removes most of it. Training keeps randomness by shuffling, then
sorting only inside large "mega-batches" (50 batches) and shuffling the batch order again, the
scheme of `transformers`' LengthGroupedSampler, rebuilt here so it is seeded per epoch and
independent of any Trainer. With a token budget instead of a batch size, batches are cut from
the length-sorted rows once and only their order is shuffled each epoch (fairseq's scheme), so
every epoch has the same number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

MEGABATCH_MULTIPLIER = 50


def whole_rounds(batches: list[list[int]], processes: int) -> list[list[int]]:
    """An epoch's batches made a whole number of rounds of one batch per process, the last round
    filled with the epoch's first batches: every process then takes the same number of steps, and
    a resumed run is filled the same way as one that did not stop."""
    return batches + batches[:-len(batches) % processes] if batches else batches


class TrainBatches(Sampler[list[int]]):
    """Seeded batches of indices; length-grouped when `lengths` is given, plain shuffle otherwise.

    With several `processes`, the epoch is a whole number of rounds of one batch per process
    (`whole_rounds`), which accelerate deals out in turn.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True,
                 processes: int = 1) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_by_length = group_by_length
        self.processes = processes
        self.epoch = 0
        self.skip = 0  # leading batches of the epoch to leave out: those trained on before a resume

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.lengths) / self.batch_size) / self.processes) * self.processes

    def __iter__(self) -> Iterator[list[int]]:
        yield from whole_rounds(list(self._epoch_batches()), self.processes)[self.skip:]

    def _epoch_batches(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        if not self.group_by_length:
            yield from _chunks(order, self.batch_size)
            return
        size = self.batch_size * MEGABATCH_MULTIPLIER
        batches = []
        for start in range(0, len(order), size):
            mega = sorted(order[start:start + size], key=lambda i: -self.lengths[i])
            batches += _chunks(mega, self.batch_size)
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        yield from (batches[i] for i in shuffled)


class TokenBudgetBatches(Sampler[list[int]]):
    """Seeded batches of as many rows as fit in `max_tokens` padded tokens each.

    A batch pads to its longest row, so it holds `max_tokens // longest` rows: many short ones or
    a few long ones, for a steady cost per step. Rows of equal length are grouped in a seeded
    random order; the batches are fixed for the run and shuffled each epoch.
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int, processes: int = 1) -> None:
        self.lengths = list(lengths)
        self.max_tokens = max_tokens
        self.seed = seed
        self.processes = processes
        self.epoch = 0
        self.skip = 0
        if self.lengths and max(self.lengths) > max_tokens:
            raise ValueError(f"a row of {max(self.lengths)} tokens does not fit in a budget of {max_tokens}")
        tie_break = torch.randperm(len(self.lengths), generator=torch.Generator().manual_seed(seed)).tolist()
        order = sorted(range(len(self.lengths)), key=lambda i: (-self.lengths[i], tie_break[i]))
        self.batches: list[list[int]] = []
        for i in order:
            batch = self.batches[-1] if self.batches else None
            if batch is None or (len(batch) + 1) * self.lengths[batch[0]] > max_tokens:
                self.batches.append([i])
            else:
                batch.append(i)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.processes) * self.processes

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        shuffled = torch.randperm(len(self.batches), generator=generator).tolist()
        yield from whole_rounds([self.batches[i] for i in shuffled], self.processes)[self.skip:]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of indices sorted longest first, for inference (order is restored afterwards)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return _chunks(order, batch_size)


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
