"""A side's values sent to the suite through a pipe as each step produces them, never written to disk.

Each step's values are one message: a JSON header line naming the step run ({"dtype", "step", "case"})
and its arrays ([name, dtype, shape, order] each, in order), then the arrays' bytes, in C order, or in
Fortran order ("F") for an array that is so in memory: a Paddle Linear weight in torch's layout is a
transposed view, sent as it lies rather than copied in the side (the side is the suite's slower one,
and a float64 AlexNet's largest weight takes a second to transpose). The suite reads
both sides' messages in the order both run their steps (alignment.worker.step_runs), the reference's whole
and the port's an array at a time, compares them at once and keeps on disk only what a user reads
(alignment.suite: the failing keys, the reprod_log steps, every array with --keep-arrays). No pickle:
only the numeric dtypes below are read, into arrays allocated for them, so a message cannot run code; a
header is bounded in size.
"""
import json

import numpy as np

# The dtypes a step's values may have: numbers and flags (alignment.reprod_format holds no other)
DTYPES = frozenset(np.dtype(name).str for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64"))
FORTRAN = "F"
ORDERS = ("C", FORTRAN)
HEADER_LIMIT = 16 << 20  # bytes of one header line: a few hundred thousand keys' names and shapes


class BrokenStream(Exception):
    """A message that does not read as one: the side ended within it, or sent something else."""


def write_step(handle, run, values):
    """Send one step's values {key: numpy array}; `run` {"dtype", "step", "case"} names it."""
    arrays = {key: _as_laid_out(np.asarray(value)) for key, value in values.items()}
    for key, (array, _) in arrays.items():
        if array.dtype.str not in DTYPES:
            raise TypeError(f"{key}: a step's values are numeric arrays, got {array.dtype}")
    header = {**run, "arrays": [[key, array.dtype.str, list(array.shape), order]
                                for key, (array, order) in arrays.items()]}
    handle.write(json.dumps(header).encode() + b"\n")
    for array, order in arrays.values():
        handle.write(_bytes_of(array.T if order == FORTRAN else array))
    handle.flush()


def read_step(handle):
    """(run, {key: numpy array}) of the next message, or None when the side has closed its end."""
    message = read_step_arrays(handle)
    return message and (message[0], dict(message[1]))


def read_step_arrays(handle):
    """(run, iterator of (key, numpy array)) of the next message, each array read as the iterator reaches
    it, so that a reader may hold one at a time (run the iterator to its end before reading the next
    message); None when the side has closed its end."""
    line = handle.readline(HEADER_LIMIT + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise BrokenStream("a header without its end")
    try:
        header = json.loads(line)
        arrays = [(str(key), np.dtype(dtype), tuple(int(size) for size in shape), str(order))
                  for key, dtype, shape, order in header.pop("arrays")]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise BrokenStream(f"not a header ({error})") from None
    return header, ((key, _read_array(handle, key, dtype, shape, order)) for key, dtype, shape, order in arrays)


def _read_array(handle, key, dtype, shape, order):
    if dtype.str not in DTYPES or any(size < 0 for size in shape) or order not in ORDERS:
        raise BrokenStream(f"{key}: not a numeric array ({dtype}, {shape}, {order})")
    array = np.empty(shape, dtype, order=order)
    view = _bytes_of(array.T if order == FORTRAN else array)
    read = 0
    while read < len(view):
        count = handle.readinto(view[read:])
        if not count:
            raise BrokenStream(f"{key}: the side ended within its values")
        read += count
    return array


def _as_laid_out(array):
    """(array, order): the array and the order its memory holds it in, a copy in C order when neither."""
    if array.flags.c_contiguous:
        return array, "C"
    if array.flags.f_contiguous:
        return array, FORTRAN
    return np.ascontiguousarray(array), "C"  # which makes 0-d arrays 1-d


def _bytes_of(array):
    """A writable byte view of a C-contiguous array's memory (no copy; empty arrays too)."""
    return memoryview(array.reshape(-1).view(np.uint8))
