"""The batch both sides see, written once per run as .npy under inputs/ at each size the run needs.

A pair brings its own (`input_batch(data, count, sizes)` of its adapter); by default it is the first
images of each class of the project's CIFAR-10 data (the built-in synthetic set unless --data), through
the references' preprocessing (alignment.transforms) at each size."""
import numpy as np

from greedyhash_common.data.cifar10 import load_cifar10
from greedyhash_common.data.source import resolve_data_path
from greedyhash_common.infra.atomic import atomic_path

from .paths import images_path, labels_path
from .transforms import preprocess


def first_of_each_class(labels, count):
    """Indices of `count` images cycling through the classes, so the labels are not all alike."""
    per_class = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    order = [indices[rank] for rank in range(max(map(len, per_class))) for indices in per_class
             if rank < len(indices)]
    return np.asarray(order[:count])


def cifar10_batch(data, count, sizes):
    """({size: images, NCHW float64}, int64 labels): the default batch."""
    images, labels = load_cifar10(resolve_data_path(data))
    chosen = first_of_each_class(labels, count)
    return {size: preprocess(images[chosen], size) for size in sizes}, labels[chosen]


def _save(array, path):
    with atomic_path(path) as tmp:
        np.save(tmp, array, allow_pickle=False)


def write_input_batch(workdir, pair, data, batch_size, sizes, weight_sets):
    """The batch of `pair` at `sizes`, and at the sizes its `weight_sets` are made on (WEIGHTS_MADE_ON)."""
    made_on = pair.WEIGHTS_MADE_ON
    sizes = sorted({*sizes, *(made_on[weight_set] for weight_set in weight_sets if weight_set in made_on)})
    images, labels = pair.input_batch(data, batch_size, sizes)
    for size in sizes:
        _save(images[size], images_path(workdir, size))
    _save(labels, labels_path(workdir))
