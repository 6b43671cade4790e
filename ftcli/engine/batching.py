"""Batch orders: length-grouped shuffles for training, length-sorted batches for inference.

Padding to the longest sequence in a batch costs compute for every pad token; grouping rows of
similar length into a batch removes most of it. Training keeps randomness by shuffling, then
sorting only inside large "mega-batches" (50 batches) and shuffling the batch order again, the
scheme of `transformers`' LengthGroupedSampler, rebuilt here so it is seeded per epoch and
independent of any Trainer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

MEGABATCH_MULTIPLIER = 50


class TrainBatches(Sampler[list[int]]):
    """Seeded batches of indices; length-grouped when `lengths` is given, plain shuffle otherwise."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_by_length = group_by_length
        self.epoch = 0
        self.skip = 0  # leading batches of the epoch to leave out: those trained on before a resume

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        yield from list(self._epoch_batches())[self.skip:]

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


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of indices sorted longest first, for inference (order is restored afterwards)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return _chunks(order, batch_size)


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
