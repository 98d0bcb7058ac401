"""Hostile and damaged files for the tests: crafted pickles, tiny CIFAR-10 batches, images, and the check
that an entry point refused its input the way the project promises (status 2, one `error:` line)."""
import os
import pickle
import struct
import zlib

import numpy as np

from greedyhash_common.infra.errors import EXIT_BAD_INPUT

_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's own _reconstruct, wherever this numpy keeps it


class ForgedDtype:
    """Pickles as np.dtype(name) followed by the given state: what numpy's dtype.__setstate__ would apply."""

    def __init__(self, name, state):
        self.name, self.state = name, state

    def __reduce__(self):
        return np.dtype, (self.name, False, True), self.state


class ForgedArray:
    """Pickles as numpy's array reconstruction with any shape, dtype and data."""

    def __init__(self, shape, dtype, data, version=1):
        self.state = (version, shape, dtype, False, data)

    def __reduce__(self):
        return _RECONSTRUCT, (np.ndarray, (0,), b"b"), self.state


def object_dtype_denying_objects():
    """An object dtype whose flags say it holds no objects: numpy then reads raw bytes as pointers (the crash
    of issue 12 in the old loader)."""
    return ForgedDtype("O8", (3, "|", None, None, None, -1, -1, 0))


def forged_object_array():
    return ForgedArray((4,), object_dtype_denying_objects(), b"\x41" * 32)


def write_forged_pdparams(path):
    with open(path, "wb") as handle:
        pickle.dump({"alex.features.0.weight": forged_object_array()}, handle, protocol=4)
    return str(path)


def write_cifar_batches(folder, images_per_class, protocol):
    """A CIFAR-10 python folder of tiny batches, pickled with `protocol` by this Python 3."""
    folder = os.path.join(folder, "cifar-10-batches-py")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{number}" for number in range(1, 6)] + ["test_batch"]
    for name in names:
        labels = [label for label in range(10) for _ in range(images_per_class)]
        batch = {b"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8), b"labels": labels,
                 b"batch_label": name.encode(), b"filenames": [b"x.png"] * len(labels)}
        with open(os.path.join(folder, name), "wb") as handle:
            pickle.dump(batch, handle, protocol=protocol)
    with open(os.path.join(folder, "batches.meta"), "wb") as handle:
        pickle.dump({b"label_names": [b"c"] * 10}, handle, protocol=protocol)
    return folder


def write_png_header_only(path, width, height):
    """A PNG whose header claims width x height pixels (Pillow refuses by the header before decoding)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00"))
                     + chunk(b"IEND", b""))
    return str(path)


def message_lines(completed):
    """stderr without Paddle's import warning ("No ccache found", two lines)."""
    lines = completed.stderr.splitlines()
    noise = {index for index, line in enumerate(lines) if "ccache" in line}
    noise |= {index + 1 for index in noise if index + 1 < len(lines) and "warnings.warn" in lines[index + 1]}
    return [line for index, line in enumerate(lines) if index not in noise and line.strip()]


def assert_refused(completed, *fragments, status=EXIT_BAD_INPUT, prefix="error: "):
    """Exit `status` with exactly one message line, holding every fragment; no traceback."""
    lines = message_lines(completed)
    assert completed.returncode == status, completed.stderr
    assert len(lines) == 1 and lines[0].startswith(prefix), completed.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def flip_a_byte_keeping_times(path, offset=-1):
    """Change one byte of `path`, its size and timestamps as they were: only its content says it changed."""
    status = os.stat(path)
    with open(path, "r+b") as handle:
        handle.seek(offset, os.SEEK_END if offset < 0 else os.SEEK_SET)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
