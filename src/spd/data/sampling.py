"""Training sample order that survives interruption: the order of an epoch is a function of
(seed, epoch) alone, and a run resumed in the middle of an epoch skips the batches it already
trained on without loading them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch


class EpochSampler(torch.utils.data.Sampler):
    """Yields (epoch, index) in an order that is a function of (seed, epoch) alone; Lightning calls
    ``set_epoch`` before every epoch (also through its DDP wrapper), so a resumed run sees the same
    order as an uninterrupted one. The epoch in the key seeds the sample's augmentation."""

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True):
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = range(self.size)
        return iter((self.epoch, i) for i in order)


class ResumableBatchSampler(torch.utils.data.BatchSampler):
    """A batch sampler whose first pass starts ``skip`` batches into the epoch.

    The skip applies to this process's own batches, so it is the same number on every DDP rank
    (Lightning rebuilds this class around its distributed sampler with the same arguments). Only
    indices are skipped, no sample is loaded; the length stays the whole epoch's, as Lightning
    expects of a resumed loader."""

    def __init__(self, sampler, batch_size: int, drop_last: bool, skip: int = 0):
        super().__init__(sampler, batch_size, drop_last)
        self.skip = skip

    def __iter__(self) -> Iterator[list]:
        skip, self.skip = self.skip, 0
        return itertools.islice(super().__iter__(), skip, None)
