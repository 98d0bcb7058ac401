"""The data both frameworks train and evaluate on: images, labels and the split, prepared once.

The split is drawn once and saved as a file; each framework's loaders read that file, so they can
only disagree if the file does. The built-in data has 120 images per class, too few for the
reference counts (100 query / 500 train per class); it gets 20 query / 50 train per class.
"""
import dataclasses
import os

from ..hyperparameters import SEED
from .cifar10 import dataset_digest, load_cifar10
from .source import resolve_data_path
from .split import DEFAULT_PROTOCOL, load_split, make_split, save_split

BUILTIN_QUERY_PER_CLASS = 20
BUILTIN_TRAIN_PER_CLASS = 50


@dataclasses.dataclass(frozen=True)
class PreparedData:
    images: object  # uint8 (N, 32, 32, 3)
    labels: object  # int64 (N,)
    split: object  # greedyhash_common.data.split.Split
    source: str  # the folder or archive read

    def subset(self, part):
        """(images, labels) of "query", "train" or "database"."""
        indices = getattr(self.split, part)
        return self.images[indices], self.labels[indices]


def load_data(data, split_file):
    """Read the data and the saved split made for it (refused if made for other data)."""
    source = resolve_data_path(data)
    images, labels = load_cifar10(source)
    split = load_split(split_file, expected_digest=dataset_digest(images, labels))
    return PreparedData(images, labels, split, str(source))


def write_split(data, split_file, protocol=DEFAULT_PROTOCOL, seed=SEED, query_per_class=None,
                train_per_class=None):
    """Draw the split of `data` (None: the built-in data) and save it to `split_file`."""
    source = resolve_data_path(data)
    images, labels = load_cifar10(source)
    if data is None:
        query_per_class = query_per_class or BUILTIN_QUERY_PER_CLASS
        train_per_class = train_per_class or BUILTIN_TRAIN_PER_CLASS
    split = make_split(labels, protocol, seed, query_per_class, train_per_class)
    os.makedirs(os.path.dirname(os.path.abspath(split_file)), exist_ok=True)
    save_split(split, split_file, dataset_digest(images, labels))
    return PreparedData(images, labels, split, str(source))
