"""The CIFAR-10 (I) query / train / database split and its two sibling protocols.

The split follows DeepHash-pytorch's `cifar_dataset` (which the Paddle reproduction uses): after
`np.random.seed(seed)`, each class's indices are permuted in label order and cut into query, train
and rest. A private RandomState draws the same stream as the seeded global RNG without touching it.
The split is made once, saved as an `.npz` (no pickled objects), and read by both frameworks.
"""
import dataclasses
import json
import tokenize
import zipfile
import zlib

import numpy as np

from ..app.option_checks import check_output_file
from ..hyperparameters import NUM_CLASSES, SEED
from ..infra.atomic import atomic_path
from ..infra.bounded_read import open_regular
from ..infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from .cifar10 import BATCH_NAMES, IMAGES_PER_BATCH, dataset_digest, load_cifar10
from .source import resolve_data_path


@dataclasses.dataclass(frozen=True)
class Protocol:
    query_per_class: int
    train_per_class: int
    database_parts: tuple  # which of ("train", "rest") make up the database, in this order


PROTOCOLS = {
    "cifar10-1": Protocol(query_per_class=100, train_per_class=500, database_parts=("train", "rest")),
    "cifar10": Protocol(query_per_class=100, train_per_class=500, database_parts=("rest",)),
    "cifar10-2": Protocol(query_per_class=1000, train_per_class=5000, database_parts=("train",)),
}
DEFAULT_PROTOCOL = "cifar10-1"

SMALLER_COUNTS_HINT = ("draw a split with smaller per-class counts (python -m greedyhash_common.data.split "
                       "--query-per-class Q --train-per-class T --out split.npz) and pass it with --split-file, "
                       "or choose another --protocol")
_FORMAT = "greedyhash-split"
_FORMAT_VERSION = 1
_INDEX_NAMES = ("query", "train", "database")
# The indices take at most twice the images CIFAR-10's batches can hold (the database may repeat the
# training images), as int64, plus the metadata.
SPLIT_FILE_LIMIT = 2 * IMAGES_PER_BATCH * len(BATCH_NAMES) * 8 + (1 << 16)


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class Split:
    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    protocol: str
    seed: int
    query_per_class: int
    train_per_class: int
    num_images: int


def make_split(labels, protocol=DEFAULT_PROTOCOL, seed=SEED, query_per_class=None,
               train_per_class=None):
    """Draw the split of `labels`; the per-class counts default to the protocol's."""
    rule = _protocol(protocol)
    query_per_class = rule.query_per_class if query_per_class is None else query_per_class
    train_per_class = rule.train_per_class if train_per_class is None else train_per_class
    _check_counts(query_per_class, train_per_class)
    _check_seed(seed)
    labels = _check_labels(labels)
    parts = _draw_parts(labels, seed, query_per_class, train_per_class)
    database = np.concatenate([parts[name] for name in rule.database_parts])
    if database.size == 0:
        raise UserInputError(
            f"protocol {protocol} would leave an empty database: no images are left after "
            f"{query_per_class} query + {train_per_class} train per class")
    return Split(query=parts["query"], train=parts["train"], database=database, protocol=protocol,
                 seed=seed, query_per_class=query_per_class, train_per_class=train_per_class,
                 num_images=len(labels))


def _protocol(name):
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UserInputError(f"unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}") from None


def _check_counts(query_per_class, train_per_class):
    for name, count in (("query_per_class", query_per_class), ("train_per_class", train_per_class)):
        if not isinstance(count, (int, np.integer)) or count < 1:
            raise UserInputError(f"{name} must be a positive integer, got {count!r}")


def _check_seed(seed):
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise UserInputError(
            f"the seed must be an integer in 0..2**32-1 (numpy's legacy RNG), got {seed!r}")


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserInputError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise UserInputError(f"labels must lie in 0..{NUM_CLASSES - 1}")
    return labels


def _draw_parts(labels, seed, query_per_class, train_per_class):
    """query, train and rest index arrays, each the concatenation over classes 0..9 in order."""
    rng = np.random.RandomState(seed)
    needed = query_per_class + train_per_class
    parts = {"query": [], "train": [], "rest": []}
    for label in range(NUM_CLASSES):
        index = np.where(labels == label)[0]
        if len(index) < needed:
            raise UserInputError(
                f"class {label} has {len(index)} images, fewer than the {needed} this split needs "
                f"({query_per_class} query + {train_per_class} train per class); "
                f"{SMALLER_COUNTS_HINT}")
        index = index[rng.permutation(len(index))]
        parts["query"].append(index[:query_per_class])
        parts["train"].append(index[query_per_class:needed])
        parts["rest"].append(index[needed:])
    return {name: np.concatenate(pieces).astype(np.int64) for name, pieces in parts.items()}


def save_split(split, path, source_digest):
    """Write the split and the data digest it was made for, atomically, as an `.npz` without pickles."""
    metadata = {
        "format": _FORMAT, "version": _FORMAT_VERSION, "protocol": split.protocol,
        "seed": int(split.seed), "query_per_class": int(split.query_per_class),
        "train_per_class": int(split.train_per_class), "num_images": int(split.num_images),
        "source_digest": source_digest,
    }
    arrays = {name: np.asarray(getattr(split, name), dtype=np.int64) for name in _INDEX_NAMES}
    with atomic_path(path) as tmp:
        # A file handle, not a name: np.savez would append ".npz" to the temporary name.
        with open(tmp, "wb") as handle:
            np.savez(handle, metadata=np.array(json.dumps(metadata, sort_keys=True)), **arrays)


def load_split(path, expected_digest=None):
    """Read and check a saved split; if `expected_digest` is given, it must be the split's data."""
    metadata, arrays = _read_npz(path)
    _check_metadata(metadata, path)
    _check_indices(arrays, metadata, path)
    if expected_digest is not None and metadata["source_digest"] != expected_digest:
        raise UserInputError(
            f"{path}: this split was made for other data (digest {metadata['source_digest'][:12]}…) "
            f"than the data in use (digest {expected_digest[:12]}…); "
            "make a new one with python -m greedyhash_common.data.split")
    return Split(**arrays, **{key: metadata[key] for key in
                              ("protocol", "seed", "query_per_class", "train_per_class",
                               "num_images")})


def _read_npz(path):
    try:
        # Our own handle: np.load leaves the file open when the zip directory is unreadable.
        with open_regular(path, SPLIT_FILE_LIMIT, "split file") as handle, np.load(handle, allow_pickle=False) as npz:
            missing = {"metadata", *_INDEX_NAMES} - set(npz.files)
            if missing:
                raise UserInputError(f"{path}: not a split file (missing {sorted(missing)})")
            unpacked = sum(member.file_size for member in npz.zip.infolist())
            if unpacked > SPLIT_FILE_LIMIT:
                raise UserInputError(f"{path}: {unpacked} bytes unpacked, larger than a split file can be")
            metadata = json.loads(str(npz["metadata"][()]))
            arrays = {name: npz[name] for name in _INDEX_NAMES}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError, zlib.error,
            SyntaxError, tokenize.TokenError) as error:
        # NotImplementedError: zipfile's answer to a damaged version field; the last two: a damaged .npy header
        raise UserInputError(f"{path}: not a readable split file ({error})") from None
    if not isinstance(metadata, dict):
        raise UserInputError(f"{path}: not a split file (its metadata is not a JSON object)")
    return metadata, arrays


def _check_metadata(metadata, path):
    if metadata.get("format") != _FORMAT or metadata.get("version") != _FORMAT_VERSION:
        raise UserInputError(f"{path}: not a split file of format {_FORMAT} v{_FORMAT_VERSION}")
    if metadata.get("protocol") not in PROTOCOLS:
        raise UserInputError(f"{path}: unknown protocol {metadata.get('protocol')!r}")
    for key in ("seed", "query_per_class", "train_per_class", "num_images"):
        if not isinstance(metadata.get(key), int):
            raise UserInputError(f"{path}: metadata field {key!r} is missing or not an integer")
    if not isinstance(metadata.get("source_digest"), str):
        raise UserInputError(f"{path}: metadata field 'source_digest' is missing")


def _check_indices(arrays, metadata, path):
    expected_sizes = {"query": NUM_CLASSES * metadata["query_per_class"],
                      "train": NUM_CLASSES * metadata["train_per_class"]}
    for name, indices in arrays.items():
        if indices.dtype != np.int64 or indices.ndim != 1:
            raise UserInputError(
                f"{path}: {name} must be 1-D int64, found {indices.dtype} {indices.shape}")
        if name in expected_sizes and len(indices) != expected_sizes[name]:
            raise UserInputError(
                f"{path}: {name} has {len(indices)} indices, expected {expected_sizes[name]}")
        if indices.size and (indices.min() < 0 or indices.max() >= metadata["num_images"]):
            raise UserInputError(f"{path}: {name} indices outside 0..{metadata['num_images'] - 1}")
        if len(np.unique(indices)) != len(indices):
            raise UserInputError(f"{path}: {name} repeats an index")
    # In every protocol the query images are held out of both training and the database.
    for other in ("train", "database"):
        if np.intersect1d(arrays["query"], arrays[other]).size:
            raise UserInputError(f"{path}: query and {other} share images")


def _parse_args(argv):
    parser = OneLineArgumentParser(
        prog="python -m greedyhash_common.data.split",
        description="Draw the query / train / database split of CIFAR-10 and save it as .npz.")
    parser.add_argument("--data", default=None, help="CIFAR-10 folder or cifar-10-python.tar.gz "
                                                     "(default: the built-in synthetic data)")
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL, choices=sorted(PROTOCOLS))
    parser.add_argument("--seed", type=int, default=SEED, help="default %(default)s")
    parser.add_argument("--query-per-class", type=int, default=None,
                        help="default: the protocol's (100 for cifar10-1)")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help="default: the protocol's (500 for cifar10-1)")
    parser.add_argument("--out", required=True, help="the .npz file to write")
    return parser.parse_args(argv)


@exits_cleanly_on_bad_input
def main(argv=None):
    args = _parse_args(argv)
    check_output_file(args.out, "--out")
    data_path = resolve_data_path(args.data)
    images, labels = load_cifar10(data_path)
    split = make_split(labels, args.protocol, args.seed, args.query_per_class, args.train_per_class)
    save_split(split, args.out, dataset_digest(images, labels))
    print(f"wrote {args.out}: protocol {split.protocol}, seed {split.seed}, {len(split.query)} query / "
          f"{len(split.train)} train / {len(split.database)} database images of {data_path}")


if __name__ == "__main__":
    main()
