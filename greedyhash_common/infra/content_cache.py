"""Reuse files made earlier when what they were made from has not changed, keyed by content.

A maker writes its outputs, then a stamp beside them: the key of everything the outputs follow from
(the bytes of the input files, the source code of the code that makes them, versions, settings) and
each output's size and sha256. The outputs are reused only when the key is the same and every output
still has the bytes the stamp describes, checked at each reuse; anything else (another input, an edited
module, a newer torch, an output replaced, edited, truncated or deleted, whatever its timestamps say, a
stamp from an interrupted run) makes them again. The stamp is written last, so a maker cut short leaves
no stamp.
"""
import hashlib
import json
import os

import numpy as np

from .atomic import write_text
from .bounded_read import open_regular, read_bounded
from .errors import UserInputError

_CHUNK = 1 << 22
STAMP_LIMIT = 1 << 20  # a stamp describes a few outputs in a few hundred bytes


def file_digest(path):
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_digest(root, names):
    """sha256 of the .py files under `root`'s `names` (folders and files), by relative path and bytes."""
    files = []
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            files += [os.path.join(folder, file) for folder, _, found in os.walk(path) for file in found
                      if file.endswith(".py")]
        else:
            files.append(path)
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(os.path.relpath(path, root).encode() + b"\0" + file_digest(path).encode())
    return digest.hexdigest()


def arrays_digest(arrays):
    """sha256 of {name: numpy array}: each name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def key_of(parts):
    """The key of a JSON-serializable description of what the outputs follow from."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _described(outputs):
    return {os.path.basename(path): [os.stat(path).st_size, file_digest(path)] for path in outputs}


def _still_described(recorded, outputs):
    """Whether every output has the size and bytes `recorded` says (sizes first: they cost no reading)."""
    names = {os.path.basename(path): path for path in outputs}
    if not isinstance(recorded, dict) or recorded.keys() != names.keys():
        return False
    if any(not isinstance(recorded[name], list) or len(recorded[name]) != 2
           or os.stat(path).st_size != recorded[name][0] for name, path in names.items()):
        return False
    return all(file_digest(path) == recorded[name][1] for name, path in names.items())


def _recorded(stamp):
    """The stamp's content, or None when it is missing, unreadable, or no stamp (a folder, a link to a device
    or a FIFO, a file larger than a stamp can be: never read to its end)."""
    try:
        recorded = json.loads(read_bounded(stamp, STAMP_LIMIT, "stamp"))
    except (OSError, ValueError, RecursionError, UserInputError):  # RecursionError: JSON nested too deep
        return None
    return recorded if isinstance(recorded, dict) else None


def is_fresh(stamp, key, outputs):
    """Whether `outputs` were made from what `key` describes and have the bytes they were made with."""
    recorded = _recorded(stamp)
    try:
        return recorded is not None and recorded.get("key") == key and _still_described(recorded.get("outputs"),
                                                                                         outputs)
    except (OSError, UserInputError):  # an output missing, or no longer a regular file
        return False


def stamped_key(stamp, outputs):
    """The key `outputs` were made from, if they still have the bytes the stamp describes; else None. The
    key then identifies their content, for what is made from them in turn."""
    recorded = _recorded(stamp)
    try:
        fresh = recorded is not None and _still_described(recorded.get("outputs"), outputs)
    except (OSError, UserInputError):
        return None
    return recorded.get("key") if fresh else None


def write_stamp(stamp, key, outputs):
    """Record that `outputs`, just written, follow from `key`."""
    write_text(stamp, json.dumps({"key": key, "outputs": _described(outputs)}, indent=1) + "\n")
