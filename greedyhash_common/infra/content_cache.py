"""Reuse files made earlier when what they were made from has not changed, keyed by content.

A maker writes its outputs, then a stamp beside them: the key of everything the outputs follow from
(the bytes of the input files, the source code of the code that makes them, versions, settings) and
each output's size and modification time. The outputs are reused only when the key is the same and
every output is still the file the stamp describes; anything else (another input, an edited module, a
newer torch, an output replaced, truncated or deleted, a stamp from an interrupted run) makes them
again. The stamp is written last, so a maker cut short leaves no stamp.
"""
import hashlib
import json
import os

from .atomic import write_text

_CHUNK = 1 << 22


def file_digest(path):
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
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


def key_of(parts):
    """The key of a JSON-serializable description of what the outputs follow from."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _described(outputs):
    return {os.path.basename(path): [os.stat(path).st_size, os.stat(path).st_mtime_ns] for path in outputs}


def is_fresh(stamp, key, outputs):
    """Whether `outputs` were made from what `key` describes and are unchanged since."""
    try:
        with open(stamp, encoding="utf-8") as handle:
            recorded = json.load(handle)
        return recorded == {"key": key, "outputs": _described(outputs)}
    except (OSError, ValueError):
        return False


def stamped_key(stamp, outputs):
    """The key `outputs` were made from, if they are still the files the stamp describes; else None. The key
    then identifies their content, for what is made from them in turn."""
    try:
        with open(stamp, encoding="utf-8") as handle:
            recorded = json.load(handle)
        return recorded["key"] if recorded.get("outputs") == _described(outputs) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_stamp(stamp, key, outputs):
    """Record that `outputs`, just written, follow from `key`."""
    write_text(stamp, json.dumps({"key": key, "outputs": _described(outputs)}, indent=1) + "\n")
