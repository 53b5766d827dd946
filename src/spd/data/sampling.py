"""Training sample order that survives interruption and splits across processes: the order of an
epoch is a function of (seed, epoch) alone, each of ``world_size`` processes takes every
``world_size``-th sample of it (the order padded by its own beginning to a multiple of
``world_size``, so that every process makes the same number of steps), and a run resumed in the
middle of an epoch skips the batches it already trained on without loading them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch


def epoch_order(size: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The sample order of one epoch, the same in every process."""
    if not shuffle:
        return list(range(size))
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(size, generator=g).tolist()


class EpochSampler(torch.utils.data.Sampler):
    """Yields (epoch, index) for process ``rank`` of ``world_size``: its share of
    :func:`epoch_order`. Lightning calls ``set_epoch`` before every epoch, so a resumed run sees the
    same order as an uninterrupted one. The epoch in the key seeds the sample's augmentation.
    Training passes ``use_distributed_sampler=False`` to Lightning, which would otherwise replace
    this sampler with its own."""

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = epoch_order(self.size, self.seed, self.epoch, self.shuffle)
        padded = (order * (1 + len(self) * self.world_size // max(1, len(order))))[: len(self) * self.world_size]
        return iter((self.epoch, i) for i in padded[self.rank::self.world_size])


class ResumableBatchSampler(torch.utils.data.BatchSampler):
    """A batch sampler whose first pass starts ``skip`` batches into the epoch.

    The skip counts this process's own batches, the same number on every process (each makes the
    same number of steps). Only indices are skipped, no sample is loaded; the length stays the
    whole epoch's, as Lightning expects of a resumed loader."""

    def __init__(self, sampler, batch_size: int, drop_last: bool, skip: int = 0):
        super().__init__(sampler, batch_size, drop_last)
        self.skip = skip

    def __iter__(self) -> Iterator[list]:
        skip, self.skip = self.skip, 0
        return itertools.islice(super().__iter__(), skip, None)


def shard(size: int, rank: int, world_size: int) -> list[int]:
    """The indices of a split that process ``rank`` evaluates: every ``world_size``-th, no padding,
    so that no image is counted twice."""
    return list(range(rank, size, world_size))
