"""The shared batch order: a pure function of (seed, epoch), identical for 1, 2 or 3 ranks."""
import numpy as np
import pytest

from greedyhash_common.data.batch_order import epoch_batches, epoch_permutation, rank_batches
from greedyhash_common.infra.errors import UserInputError


def test_permutation_is_the_documented_function_of_seed_and_epoch():
    np.testing.assert_array_equal(epoch_permutation(50, seed=7, epoch=3),
                                  np.random.default_rng([7, 3]).permutation(50))
    np.testing.assert_array_equal(epoch_permutation(50, 7, 3), epoch_permutation(50, 7, 3))


def test_epochs_and_seeds_give_different_orders():
    orders = {tuple(epoch_permutation(100, seed, epoch)) for seed in (0, 1) for epoch in (0, 1, 2)}
    assert len(orders) == 6


@pytest.mark.parametrize("num_items, batch_size", [(0, 4), (1, 4), (10, 4), (12, 4), (101, 32)])
def test_every_index_once_per_epoch(num_items, batch_size):
    batches = epoch_batches(num_items, batch_size, seed=5, epoch=2)
    assert all(len(batch) == batch_size for batch in batches[:-1])
    order = np.concatenate([np.empty(0, dtype=np.int64), *batches])
    np.testing.assert_array_equal(np.sort(order), np.arange(num_items))
    np.testing.assert_array_equal(order, epoch_permutation(num_items, 5, 2))


@pytest.mark.parametrize("num_items, batch_size, sizes, sizes_drop_last", [
    (10, 4, [4, 4, 2], [4, 4]),
    (8, 4, [4, 4], [4, 4]),
    (3, 4, [3], []),
])
def test_drop_last_drops_only_a_short_last_batch(num_items, batch_size, sizes, sizes_drop_last):
    kept = epoch_batches(num_items, batch_size, seed=1, epoch=0)
    dropped = epoch_batches(num_items, batch_size, seed=1, epoch=0, drop_last=True)
    assert [len(batch) for batch in kept] == sizes
    assert [len(batch) for batch in dropped] == sizes_drop_last
    for full, same in zip(kept, dropped):
        np.testing.assert_array_equal(full, same)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("num_items, batch_size", [(23, 8), (25, 6), (2, 4)])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_rank_shards_concatenate_to_the_single_process_batches(world_size, num_items, batch_size,
                                                               drop_last):
    single = epoch_batches(num_items, batch_size, seed=9, epoch=4, drop_last=drop_last)
    per_rank = [rank_batches(num_items, batch_size, 9, 4, rank, world_size, drop_last)
                for rank in range(world_size)]
    assert all(len(batches) == len(single) for batches in per_rank)  # every rank takes each step
    for step, batch in enumerate(single):
        shards = [batches[step] for batches in per_rank]
        np.testing.assert_array_equal(np.concatenate(shards), batch)
        sizes = [len(shard) for shard in shards]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] - sizes[-1] <= 1


def test_an_uneven_last_batch_gives_the_first_ranks_one_more():
    last = epoch_batches(10, 4, seed=0, epoch=0)[-1]  # 2 items over 3 ranks
    shards = [rank_batches(10, 4, 0, 0, rank, 3)[-1] for rank in range(3)]
    assert [len(shard) for shard in shards] == [1, 1, 0]
    np.testing.assert_array_equal(np.concatenate(shards), last)


@pytest.mark.parametrize("call, message", [
    (lambda: epoch_permutation(10, seed=-1, epoch=0), "seed"),
    (lambda: epoch_permutation(10, seed=0, epoch=-1), "epoch"),
    (lambda: epoch_batches(10, 0, seed=0, epoch=0), "batch_size"),
    (lambda: rank_batches(10, 4, 0, 0, rank=2, world_size=2), "rank"),
    (lambda: rank_batches(10, 4, 0, 0, rank=0, world_size=0), "world_size"),
])
def test_bad_arguments_are_reported(call, message):
    with pytest.raises(UserInputError, match=message):
        call()
