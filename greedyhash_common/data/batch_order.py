"""One training batch order, shared by the torch Sampler and the Paddle BatchSampler.

Each epoch's order is a pure function of (seed, epoch), so both frameworks, a resumed run and every
rank of a data-parallel run see the same batches without sharing RNG state. Indices are positions
into the training set (the split's `train` array), not image indices.
"""
import numpy as np

from ..infra.errors import UserInputError


def epoch_permutation(num_items, seed, epoch):
    """The order of the training set in `epoch`: a permutation of 0..num_items-1."""
    _check_non_negative(num_items=num_items, seed=seed, epoch=epoch)
    return np.random.default_rng([seed, epoch]).permutation(num_items)


def epoch_batches(num_items, batch_size, seed, epoch, drop_last=False):
    """The epoch's batches in order; the last holds the remainder, or is dropped if drop_last."""
    _check_positive(batch_size=batch_size)
    order = epoch_permutation(num_items, seed, epoch)
    stop = num_items - num_items % batch_size if drop_last else num_items
    return [order[start:start + batch_size] for start in range(0, stop, batch_size)]


def rank_batches(num_items, batch_size, seed, epoch, rank, world_size, drop_last=False):
    """Rank `rank`'s part of every global batch of `epoch_batches`, for data-parallel training.

    Each global batch is cut into `world_size` contiguous shards and rank r takes shard r. When a
    batch does not divide evenly (always so for a short last batch), the first len % world_size
    ranks take one item more; a rank may get an empty shard, which is kept so that all ranks take
    the same number of steps (their gradient all-reduces must pair up). Concatenating the shards
    over ranks gives back the single-process batch. To reproduce the single-process gradient under
    the mean all-reduce, a rank should use sum(per-item loss) * world_size / len(global batch).
    """
    _check_positive(world_size=world_size)
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise UserInputError(f"rank must be an integer in 0..{world_size - 1}, got {rank!r}")
    return [np.array_split(batch, world_size)[rank]
            for batch in epoch_batches(num_items, batch_size, seed, epoch, drop_last)]


class SharedBatchOrder:
    """The batches of one process, epoch after epoch; torch_impl.data and paddle_impl.data subclass it
    together with their framework's sampler class."""

    def __init__(self, num_items, batch_size, seed, drop_last=False, rank=0, world_size=1):
        self.num_items, self.batch_size, self.seed, self.drop_last = num_items, batch_size, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _batches(self):
        return rank_batches(self.num_items, self.batch_size, self.seed, self.epoch, self.rank, self.world_size,
                            self.drop_last)

    def __iter__(self):
        return (batch.tolist() for batch in self._batches())

    def __len__(self):
        return len(self._batches())


def _check_non_negative(**values):
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise UserInputError(f"{name} must be a non-negative integer, got {value!r}")


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise UserInputError(f"{name} must be a positive integer, got {value!r}")
