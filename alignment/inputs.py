"""The batch both sides see: the first images of each class of the dataset (by default the built-in
synthetic CIFAR-10), through the references' preprocessing, saved once as .npy."""
import os

import numpy as np

from greedyhash_common.atomic import atomic_path
from greedyhash_common.cifar10 import load_cifar10, resolve_data_path
from greedyhash_common.transforms import preprocess

from .paths import inputs_dir


def first_of_each_class(labels, count):
    """Indices of `count` images cycling through the classes, so the labels are not all alike."""
    per_class = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    order = [indices[rank] for rank in range(max(map(len, per_class))) for indices in per_class
             if rank < len(indices)]
    return np.asarray(order[:count])


def write_input_batch(workdir, data, batch_size, size):
    images, labels = load_cifar10(resolve_data_path(data))
    chosen = first_of_each_class(labels, batch_size)
    for name, array in (("images", preprocess(images[chosen], size)), ("labels", labels[chosen])):
        with atomic_path(os.path.join(inputs_dir(workdir), f"{name}.npy")) as tmp:
            np.save(tmp, array, allow_pickle=False)
