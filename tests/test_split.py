"""The split against a plain restatement of DeepHash-pytorch's cifar_dataset, and its saved file."""
import json
import os

import numpy as np
import pytest

from greedyhash_common.data import source, split as split_module
from greedyhash_common.data.cifar10 import dataset_digest, load_cifar10
from greedyhash_common.data.split import PROTOCOLS, SPLIT_FILE_LIMIT, load_split, make_split, save_split
from greedyhash_common.data.synthetic_cifar10 import write_synthetic_cifar10
from greedyhash_common.hyperparameters import NUM_CLASSES, SEED
from greedyhash_common.infra.errors import UserInputError

REAL_PER_CLASS = 6000


def deephash_reference_split(L, dataset, seed, test_size, train_size):
    """DeepHash-pytorch's cifar_dataset index logic, as it runs there (global RNG, seeded once)."""
    np.random.seed(seed)
    first = True
    for label in range(10):
        index = np.where(L == label)[0]
        N = index.shape[0]
        perm = np.random.permutation(N)
        index = index[perm]
        if first:
            test_index = index[:test_size]
            train_index = index[test_size: train_size + test_size]
            database_index = index[train_size + test_size:]
        else:
            test_index = np.concatenate((test_index, index[:test_size]))
            train_index = np.concatenate((train_index, index[test_size: train_size + test_size]))
            database_index = np.concatenate((database_index, index[train_size + test_size:]))
        first = False
    if dataset == "cifar10":
        pass  # test: 1000, train: 5000, database: 54000
    elif dataset == "cifar10-1":
        database_index = np.concatenate((train_index, database_index))  # database: 59000
    elif dataset == "cifar10-2":
        database_index = train_index  # test: 10000, train: 50000, database: 50000
    return test_index, train_index, database_index


@pytest.fixture
def restore_global_rng():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def real_sized_labels():
    return np.random.default_rng(1).permutation(np.repeat(np.arange(NUM_CLASSES), REAL_PER_CLASS))


def builtin_sized_labels():
    return np.random.default_rng(2).permutation(np.repeat(np.arange(NUM_CLASSES), 120))


def unbalanced_labels():
    return np.random.default_rng(3).integers(0, NUM_CLASSES, 3000)


LABEL_SETS = {  # name: (labels, per-class counts to use: None means the protocol's)
    "real-sized": (real_sized_labels, None),
    "built-in-sized": (builtin_sized_labels, (10, 50)),
    "unbalanced": (unbalanced_labels, (10, 50)),
}


@pytest.mark.parametrize("seed", [SEED, 0, 12345])
@pytest.mark.parametrize("label_set", sorted(LABEL_SETS))
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_matches_deephash_pytorch(restore_global_rng, protocol, label_set, seed):
    make_labels, counts = LABEL_SETS[label_set]
    labels = make_labels()
    query_per_class, train_per_class = counts or (None, None)
    split = make_split(labels, protocol, seed, query_per_class, train_per_class)
    expected = deephash_reference_split(labels, protocol, seed, split.query_per_class,
                                        split.train_per_class)
    for actual, wanted in zip((split.query, split.train, split.database), expected):
        np.testing.assert_array_equal(actual, wanted)
        assert actual.dtype == np.int64


@pytest.mark.parametrize("protocol, sizes", [
    ("cifar10-1", (1000, 5000, 59000)),
    ("cifar10", (1000, 5000, 54000)),
    ("cifar10-2", (10000, 50000, 50000)),
])
def test_sizes_on_real_sized_data(protocol, sizes):
    split = make_split(real_sized_labels(), protocol)
    assert (len(split.query), len(split.train), len(split.database)) == sizes
    assert split.num_images == NUM_CLASSES * REAL_PER_CLASS and split.seed == SEED


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_parts_are_disjoint_and_class_balanced(protocol):
    labels = real_sized_labels()
    split = make_split(labels, protocol)
    assert not np.intersect1d(split.query, split.train).size
    assert not np.intersect1d(split.query, split.database).size
    assert np.bincount(labels[split.query]).tolist() == [split.query_per_class] * NUM_CLASSES
    assert np.bincount(labels[split.train]).tolist() == [split.train_per_class] * NUM_CLASSES


def test_cifar10_1_database_is_train_then_rest():
    labels = real_sized_labels()
    split = make_split(labels, "cifar10-1")
    rest = make_split(labels, "cifar10").database
    np.testing.assert_array_equal(split.database, np.concatenate([split.train, rest]))
    everything = np.sort(np.concatenate([split.query, split.database]))
    np.testing.assert_array_equal(everything, np.arange(len(labels)))


def test_cifar10_2_database_is_train():
    split = make_split(real_sized_labels(), "cifar10-2")
    np.testing.assert_array_equal(split.database, split.train)


def test_the_global_rng_is_left_alone(restore_global_rng):
    np.random.seed(99)
    before = np.random.get_state()[1].copy()
    make_split(real_sized_labels())
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("arguments, message", [
    (dict(labels=np.repeat(np.arange(10), 120)), "class 0 has 120 images, fewer than the 600"),
    (dict(labels=np.repeat(np.arange(10), 120), protocol="imagenet"), "unknown protocol"),
    (dict(labels=np.repeat(np.arange(10), 120), query_per_class=0), "query_per_class"),
    (dict(labels=np.repeat(np.arange(10), 120), query_per_class=10, train_per_class=50, seed=-1),
     "seed"),
    (dict(labels=np.repeat(np.arange(11), 120), query_per_class=10, train_per_class=50), "0..9"),
    (dict(labels=np.repeat(np.arange(10), 60), protocol="cifar10", query_per_class=10,
          train_per_class=50), "empty database"),
])
def test_bad_arguments_are_reported(arguments, message):
    with pytest.raises(UserInputError, match=message):
        make_split(**arguments)


# --- the saved file ----------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    split = make_split(builtin_sized_labels(), "cifar10-1", query_per_class=10, train_per_class=50)
    path = tmp_path / "split.npz"
    save_split(split, path, "digest-of-the-data")
    return split, path


def test_save_and_load_round_trip(saved):
    split, path = saved
    for loaded in (load_split(path, "digest-of-the-data"), load_split(path)):
        for name in ("query", "train", "database"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(split, name))
        for name in ("protocol", "seed", "query_per_class", "train_per_class", "num_images"):
            assert getattr(loaded, name) == getattr(split, name)


def test_the_file_holds_no_pickled_objects(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as npz:
        metadata = json.loads(str(npz["metadata"][()]))
    assert metadata["source_digest"] == "digest-of-the-data" and metadata["protocol"] == "cifar10-1"


def test_the_file_is_written_at_exactly_the_given_name(tmp_path):
    path = tmp_path / "split.bin"
    save_split(make_split(builtin_sized_labels(), query_per_class=10, train_per_class=50), path, "d")
    assert [entry.name for entry in tmp_path.iterdir()] == ["split.bin"]
    assert load_split(path).num_images == 1200


def test_a_split_for_other_data_is_rejected(saved):
    _, path = saved
    with pytest.raises(UserInputError, match=f"{path}: this split was made for other data"):
        load_split(path, expected_digest="digest-of-something-else")


def rewrite(path, **changes):
    """Re-save the split file at `path` with some entries replaced (a metadata dict is JSON-encoded)."""
    with np.load(path, allow_pickle=False) as npz:
        entries = {name: npz[name] for name in npz.files}
    metadata = json.loads(str(entries["metadata"][()]))
    metadata.update(changes.pop("metadata", {}))
    entries.update(changes, metadata=np.array(json.dumps(metadata)))
    with open(path, "wb") as handle:
        np.savez(handle, **entries)


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.write_bytes(path.read_bytes()[:200]), "not a readable split file"),
    (lambda path: path.write_bytes(b"garbage" * 50), "not a readable split file"),
    (lambda path: path.unlink(), "no such file"),
    (lambda path: (path.unlink(), os.mkfifo(path)), "a device, FIFO or socket, not a regular file"),
    (lambda path: (path.unlink(), path.symlink_to("/dev/zero")), "a device, FIFO or socket, not a regular file"),
    (lambda path: path.write_bytes(b"\0" * (SPLIT_FILE_LIMIT + 1)), "larger than a split file can be"),
    (lambda path: rewrite(path, query=np.array([{"a": 1}], dtype=object)), "not a readable split file"),
    (lambda path: rewrite(path, metadata={"format": "other"}), "not a split file"),
    (lambda path: rewrite(path, metadata={"seed": "2000"}), "'seed'"),
    (lambda path: rewrite(path, database=np.array([0, 1200])), "outside 0..1199"),
    (lambda path: rewrite(path, query=np.arange(100, dtype=np.int32)), "int64"),
    (lambda path: rewrite(path, query=np.arange(99)), "expected 100"),
    (lambda path: rewrite(path, train=np.zeros(500, dtype=np.int64)), "repeats an index"),
], ids=["truncated", "garbage", "missing", "fifo", "device", "too large", "object array", "other format", "bad seed",
        "out of range", "int32", "wrong count", "repeated index"])
def test_a_damaged_split_file_is_reported(saved, damage, message):
    _, path = saved
    damage(path)
    with pytest.raises(UserInputError) as error:
        load_split(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_query_overlapping_the_database_is_rejected(saved):
    split, path = saved
    rewrite(path, database=np.concatenate([split.database, split.query[:1]]))
    with pytest.raises(UserInputError, match="query and database share images"):
        load_split(path)


# --- the command line ---------------------------------------------------------------------------------

def test_cli_writes_a_split_of_the_given_data(tmp_path, capsys):
    write_synthetic_cifar10(tmp_path / "data", 12, seed=5)
    out = tmp_path / "split.npz"
    split_module.main(["--data", str(tmp_path / "data"), "--protocol", "cifar10", "--seed", "3",
                       "--query-per-class", "2", "--train-per-class", "5", "--out", str(out)])
    assert "20 query / 50 train / 50 database" in capsys.readouterr().out
    loaded = load_split(out, dataset_digest(*load_cifar10(tmp_path / "data")))
    assert (loaded.protocol, loaded.seed) == ("cifar10", 3)


def test_cli_on_builtin_data_needs_smaller_counts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(source, "BUILTIN_CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "split.npz"
    with pytest.raises(SystemExit) as exit_info:
        split_module.main(["--out", str(out)])
    assert exit_info.value.code == 2 and "class 0 has 120 images" in capsys.readouterr().err
    split_module.main(["--query-per-class", "10", "--train-per-class", "50", "--out", str(out)])
    assert "100 query / 500 train / 1100 database" in capsys.readouterr().out
