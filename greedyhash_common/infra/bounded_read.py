"""Opening a data file a user names, with the size its format allows checked before a byte is read.

A path may name a device (/dev/zero never ends), a FIFO (blocks for ever), a socket, or a file far larger
than the format can be: a reader that reads "the whole file" would then fill the memory or hang. These
open it without blocking, refuse anything but a regular file, and refuse a size beyond the limit; a
file growing past its size as it is read is cut at the limit plus one byte, and refused.
"""
import os
import stat

from .errors import UserInputError

MIB = 1 << 20


def open_regular(path, limit=None, what="file"):
    """A binary file object of the regular file at `path` (links followed), of at most `limit` bytes (None:
    any size)."""
    path = os.fspath(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    except OSError as error:
        raise UserInputError(f"{path}: cannot read this {what} ({error.strerror})") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        kind = "a folder" if stat.S_ISDIR(status.st_mode) else "a device, FIFO or socket"
        raise UserInputError(f"{path}: {kind}, not a regular file; expected a {what}")
    if limit is not None and status.st_size > limit:
        os.close(descriptor)
        raise UserInputError(f"{path}: {status.st_size / MIB:.1f} MiB, larger than a {what} can be"
                             f" ({limit / MIB:.1f} MiB at most)")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def check_regular(path, what="file"):
    """Refuse `path` unless it is a regular file (a reader that would block on a FIFO or read a device
    without end is never handed it)."""
    open_regular(path, None, what).close()


def read_bounded(path, limit, what="file"):
    """The bytes of the regular file at `path`, refused beyond `limit` bytes."""
    with open_regular(path, limit, what) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UserInputError(f"{path}: grew beyond {limit / MIB:.1f} MiB while read; larger than a {what} can be")
    return data
