"""Fuzzing every file reader: seeded truncations, byte flips and crafted pickles of small valid files.

  python -m tests.fuzz_readers FAMILY SEED CASES_PER_FILE      (FAMILY: plain, paddle, export or torch)

Runs in a process of its own (tests/test_fuzz_readers.py starts it), so that a crash (a segfault in
numpy or a framework) fails the test instead of ending the test session; the case under way is printed to
stderr before it runs. Prints one JSON line: the count of cases by outcome ("refused": UserInputError,
"read": the damage left the file readable and valid) and every unexpected exception.
"""
import json
import os
import pickle
import random
import sys
import tempfile
import time

import numpy as np

from greedyhash_common.infra.errors import UserInputError
from tests.hostile_files import ForgedArray, ForgedDtype, forged_object_array, object_dtype_denying_objects

RECURSION_DEPTH = 100_000


def _global_call(module, name, arguments):
    """Pickle bytes that call module.name(*arguments): any callable a file could name."""
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode() + pickle.dumps(tuple(arguments), protocol=2)[2:-1]
            + b"R.")


def _deep_nesting():
    """Pickle bytes of a list nested RECURSION_DEPTH deep, written by hand (pickle.dumps would recurse)."""
    return b"\x80\x04" + b"]" * RECURSION_DEPTH + b"a" * (RECURSION_DEPTH - 1) + b"."


def crafted_pickles():
    """Hostile pickles: code references, forged dtypes, lying shapes and lengths, memory and recursion bombs."""
    plain_float = (3, "<", None, None, None, -1, -1, 0)
    shared = b"\0" * 4096
    values = {
        "object dtype denying objects": forged_object_array(),
        "float dtype claiming objects": ForgedArray((2,), ForgedDtype("f8", plain_float[:7] + (63,)), b"\0" * 16),
        "object dtype with bytes data": ForgedArray((2,), ForgedDtype("O8", (3, "|", None, None, None, -1, -1, 63)),
                                                    b"\0" * 16),
        "structured dtype": ForgedArray((1,), ForgedDtype("V8", (3, "|", None, ("a",), {"a": 1}, 8, 1, 0)), b"\0" * 8),
        "string dtype": ForgedArray((1,), ForgedDtype("U2", (3, "<", None, None, None, 8, 4, 8)), b"\0" * 8),
        "dtype with fields": ForgedArray((1,), ForgedDtype("f8", (3, "<", None, ("x",), {"x": 0}, -1, -1, 0)),
                                         b"\0" * 8),
        "huge shape": ForgedArray((10 ** 12, 10 ** 12), ForgedDtype("f8", plain_float), b"\0" * 8),
        "negative shape": ForgedArray((-1,), ForgedDtype("f8", plain_float), b""),
        "short data": ForgedArray((100,), ForgedDtype("f4", plain_float), b"\0" * 8),
        "bad state version": ForgedArray((1,), ForgedDtype("f8", plain_float), b"\0" * 8, version=7),
        "a dtype as shape": ForgedArray(object_dtype_denying_objects(), ForgedDtype("f8", plain_float), b""),
        "one bytes object for many arrays": [ForgedArray((512,), ForgedDtype("f8", plain_float), shared)] * 64,
        "array as a dict key": {ForgedArray((1,), ForgedDtype("f8", plain_float), b"\0" * 8): 1},
    }
    crafted = {name: pickle.dumps(value, protocol=4) for name, value in values.items()}
    crafted["os.system"] = _global_call("os", "system", ["true"])
    crafted["builtins.eval"] = _global_call("builtins", "eval", ["1"])
    crafted["numpy.ndarray called directly"] = _global_call("numpy", "ndarray", [(10 ** 6,)])
    crafted["codecs with another encoding"] = _global_call("_codecs", "encode", ["x", "utf-16"])
    crafted["nested a hundred thousand deep"] = _deep_nesting()
    crafted["protocol 5 buffer"] = pickle.dumps(pickle.PickleBuffer(b"abc"), protocol=5)
    return crafted


def mutations(data, rng, count, flipped_region=None):
    """`count` damaged copies of `data`: truncations, and one to eight flipped bytes (among the first
    `flipped_region` bytes, where a large file keeps its headers)."""
    for index in range(count):
        if index % 2 == 0:
            yield f"truncated at {(cut := rng.randrange(len(data)))}", data[:cut]
        else:
            damaged = bytearray(data)
            places = [rng.randrange(min(len(data), flipped_region or len(data))) for _ in range(rng.randint(1, 8))]
            for place in places:
                damaged[place] = rng.randrange(256)
            yield f"bytes changed at {places}", bytes(damaged)


# --- the readers, each on a small valid file of its kind --------------------------------------------------------

def _plain_targets(folder):
    from greedyhash_common.data.cifar10 import load_cifar10
    from greedyhash_common.data.dataset import write_split
    from greedyhash_common.data.split import load_split
    from greedyhash_common.infra.safe_pickle import load_npy_dict
    from tests.hostile_files import write_cifar_batches

    data = write_cifar_batches(folder, images_per_class=2, protocol=2)
    split = os.path.join(folder, "split.npz")
    write_split(data, split, "cifar10-2", 0, query_per_class=1, train_per_class=1)
    npy = os.path.join(folder, "values.npy")
    np.save(npy, {"h": np.ones((2, 3), np.float32), "b": np.array([1, -1])}, allow_pickle=True)
    batch = os.path.join(data, "data_batch_1")
    return [("CIFAR-10 batch", batch, lambda: load_cifar10(data)),
            ("split file", split, lambda: load_split(split)),
            ("suite .npy", npy, lambda: load_npy_dict(npy))]


def _paddle_targets(folder):
    from greedyhash_common.app.training import checkpoint_record
    from greedyhash_common.state_dicts.paddle_files import read_paddle_state
    from paddle_impl.checkpoint import read_checkpoint
    from paddle_impl.infer import read_metadata

    weights = os.path.join(folder, "weights.pdparams")
    with open(weights, "wb") as handle:
        pickle.dump({"fc.weight": np.ones((12, 10), np.float32), "fc_plus.bias": np.zeros(12, np.float32)}, handle,
                    protocol=4)
    record = {**checkpoint_record("paddle", 0, {"bit": 12, "lr": 0.001}, 0.5, [{"epoch": 1, "loss": 1.0}],
                                  [{"python": [3, [1] * 625, None], "numpy": [[1] * 624, 0, 0, 0.0],
                                    "framework": {"cpu": [[0, 1, 2]], "gpu": []}}]),
              "model": {"fc.weight": np.ones((12, 10), np.float32)}, "optimizer": {}, "scheduler": {"last_epoch": 0}}
    checkpoint = os.path.join(folder, "last.pdstate")
    with open(checkpoint, "wb") as handle:
        pickle.dump(record, handle, protocol=4)
    export = os.path.join(folder, "export")
    os.makedirs(export)
    metadata = os.path.join(export, "export.json")
    with open(metadata, "w", encoding="utf-8") as handle:
        json.dump({"bit": 12, "image_size": 64, "input": "image", "class_names": ["a"] * 10}, handle)
    return [("Paddle weights", weights, lambda: read_paddle_state(weights)),
            ("Paddle training checkpoint", checkpoint, lambda: read_checkpoint(checkpoint)),
            ("export metadata", metadata, lambda: read_metadata(export))]


# A parameter file holds each tensor's header (version, shape, dtype) before its values: flips go there
PARAMETER_HEADER_BYTES = 4096


def _export_targets(folder):
    import paddle

    from paddle_impl.export import MODEL_PREFIX, export
    from paddle_impl.infer import create_predictor, run_predictor
    from paddle_impl.model import GreedyHash
    from paddle_impl.static_model import PARAMETERS_SUFFIX, program_path

    paddle.seed(0)
    model_dir = os.path.join(folder, "export")
    export(GreedyHash(12), 64, model_dir, {"image_size": 64})
    prefix = os.path.join(model_dir, MODEL_PREFIX)
    batch = np.zeros((1, 3, 64, 64), np.float32)

    def read():
        run_predictor(create_predictor(model_dir, "cpu", 1), batch, model_dir)

    return [("exported program", program_path(prefix), read),
            ("exported parameters", prefix + PARAMETERS_SUFFIX, read, PARAMETER_HEADER_BYTES)]


def _torch_targets(folder):
    import torch

    from greedyhash_common.app.training import checkpoint_record
    from torch_impl.checkpoint import read_checkpoint
    from torch_impl.torch_files import read_torch_state

    weights = os.path.join(folder, "weights.pth")
    torch.save({"fc.weight": torch.ones(10, 12), "fc_plus.bias": torch.zeros(12)}, weights)
    record = {**checkpoint_record("torch", 0, {"bit": 12}, None, [], [{"python": [], "numpy": [],
                                                                       "framework": {"cpu": torch.zeros(4)}}]),
              "model": {"fc.weight": torch.ones(10, 12)}, "optimizer": {}, "scheduler": {}}
    checkpoint = os.path.join(folder, "last.pth")
    torch.save(record, checkpoint)
    return [("torch weights", weights, lambda: read_torch_state(weights)),
            ("torch training checkpoint", checkpoint, lambda: read_checkpoint(checkpoint))]


FAMILIES = {"plain": _plain_targets, "paddle": _paddle_targets, "export": _export_targets, "torch": _torch_targets}
PICKLE_READERS = ("CIFAR-10 batch", "Paddle weights", "Paddle training checkpoint", "torch weights",
                  "torch training checkpoint")


def fuzz(family, seed, cases_per_file):
    rng = random.Random(seed)
    outcomes = {"refused": 0, "read": 0}
    unexpected = []
    with tempfile.TemporaryDirectory(prefix="greedyhash-fuzz-") as folder:
        for name, path, read, *flipped_region in FAMILIES[family](folder):
            with open(path, "rb") as handle:
                original = handle.read()
            damaged = list(mutations(original, rng, cases_per_file, *flipped_region))
            if name in PICKLE_READERS:
                damaged += [(f"crafted: {label}", data) for label, data in crafted_pickles().items()]
            for label, data in damaged:
                print(f"{name}: {label}", file=sys.stderr, flush=True)  # names the case if the process dies
                with open(path, "wb") as handle:
                    handle.write(data)
                try:
                    read()
                    outcomes["read"] += 1
                except UserInputError as error:
                    outcomes["refused"] += 1
                    if "\n" in str(error):
                        unexpected.append(f"{name}: {label}: a message of several lines: {error!r}")
                except Exception as error:  # what the test reports: any exception but UserInputError
                    unexpected.append(f"{name}: {label}: {type(error).__name__}: {error}"[:300])
            with open(path, "wb") as handle:
                handle.write(original)
    return {"family": family, "cases": sum(outcomes.values()) + len(unexpected), **outcomes, "unexpected": unexpected}


def main():
    family, seed, cases_per_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    started = time.perf_counter()
    result = fuzz(family, seed, cases_per_file)
    print(json.dumps({**result, "seconds": round(time.perf_counter() - started, 2)}))


if __name__ == "__main__":
    main()
