"""The batch both sides see: the first images of each class of the dataset (by default the built-in
synthetic CIFAR-10), through the references' preprocessing at each size of the run, saved as .npy.
The reference size is always written: the rescaled weight set is made on it."""
import numpy as np

from greedyhash_common.data.cifar10 import load_cifar10
from greedyhash_common.data.source import resolve_data_path
from greedyhash_common.infra.atomic import atomic_path

from .cases import REFERENCE_SIZE
from .paths import images_path, labels_path
from .transforms import preprocess


def first_of_each_class(labels, count):
    """Indices of `count` images cycling through the classes, so the labels are not all alike."""
    per_class = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    order = [indices[rank] for rank in range(max(map(len, per_class))) for indices in per_class
             if rank < len(indices)]
    return np.asarray(order[:count])


def _save(array, path):
    with atomic_path(path) as tmp:
        np.save(tmp, array, allow_pickle=False)


def write_input_batch(workdir, data, batch_size, sizes):
    images, labels = load_cifar10(resolve_data_path(data))
    chosen = first_of_each_class(labels, batch_size)
    for size in sorted({REFERENCE_SIZE, *sizes}):
        _save(preprocess(images[chosen], size), images_path(workdir, size))
    _save(labels[chosen], labels_path(workdir))
