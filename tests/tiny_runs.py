"""Tiny training runs for the tests: built-in data, 2 query / 5 train images per class (protocol cifar10-2,
so the database is the 50 training images), 64 px, 12 bits; an epoch is two batches."""
import os

import numpy as np

from greedyhash_common.data.dataset import write_split
from greedyhash_common.hyperparameters import SEED

FRAMEWORKS = ("torch", "paddle")
BIT = 12
PROTOCOL = "cifar10-2"
LAST = {"torch": "last.pth", "paddle": "last.pdstate"}
BEST = {"torch": "best.pth", "paddle": "best.pdparams"}


def write_tiny_split(path):
    write_split(None, str(path), PROTOCOL, SEED, query_per_class=2, train_per_class=5)
    return str(path)


def tiny_options(split_file, output_dir, epochs=2):
    return ["--bit", BIT, "--epochs", epochs, "--image-size", 64, "--protocol", PROTOCOL, "--split-file", split_file,
            "--output-dir", output_dir, "--threads", 2]


def trained_on_first_use(run_folder, split_file, epochs):
    """framework -> `run_folder(framework)` holding a finished tiny run of `epochs` epochs, trained by the
    framework's training command the first time it is asked for."""
    from tests.conftest import run_module

    runs = {}

    def run(framework):
        if framework not in runs:
            output_dir = run_folder(framework)
            completed = run_module(f"{framework}_impl.train", *tiny_options(split_file, output_dir, epochs))
            assert completed.returncode == 0, completed.stderr
            runs[framework] = output_dir
        return runs[framework]

    return run


def read_training_checkpoint(framework, path):
    if framework == "torch":
        from torch_impl.checkpoint import read_checkpoint
    else:
        from paddle_impl.checkpoint import read_checkpoint
    return read_checkpoint(str(path))


def as_arrays(state):
    """A (nested) state dict with every tensor as a numpy array, for exact comparison."""
    if isinstance(state, dict):
        return {key: as_arrays(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return [as_arrays(value) for value in state]
    return state.numpy() if hasattr(state, "numpy") else state


def assert_identical(first, second, where="state"):
    if isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            assert_identical(first[key], second[key], f"{where}.{key}")
    elif isinstance(first, list):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second)):
            assert_identical(a, b, f"{where}[{index}]")
    elif isinstance(first, np.ndarray):
        assert first.dtype == second.dtype and np.array_equal(first, second), where
    else:
        assert first == second, where


def file_signature(path):
    status = os.stat(path)
    return status.st_mtime_ns, status.st_size


def write_seeded_weights(folder, bit=BIT):
    """(torch .pth, Paddle .pdparams) of one seeded GreedyHash, the second converted from the first."""
    import torch

    from torch_impl.model import GreedyHash
    from torch_impl.weights import save_weights
    from weights_convert.__main__ import main as convert

    torch.manual_seed(0)
    torch_path, paddle_path = os.path.join(folder, f"bit{bit}.pth"), os.path.join(folder, f"bit{bit}.pdparams")
    save_weights(GreedyHash(bit), torch_path)
    convert(["torch2paddle", torch_path, paddle_path])
    return torch_path, paddle_path


def write_png(path, image):
    from PIL import Image

    Image.fromarray(image).save(path)
    return str(path)
