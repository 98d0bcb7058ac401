"""Write files so that a reader never sees a half-written one: write beside the target, then rename.

The file being written is named TEMPORARY_PREFIX + random + the target's suffix. A process killed while
writing (SIGKILL, power loss) leaves it behind; the name says it is no one's result, so the next start
of a training run removes those in its folder (remove_temporary_files), and `make clean` every one under
logs/.
"""
import contextlib
import errno
import os
import shutil
import tempfile

from .errors import UserInputError

TEMPORARY_PREFIX = ".tmp-"
# Free space below which a failed write is taken for a full disk: torch.save reports one as
# "RuntimeError: [enforce fail at inline_container.cc] unexpected pos", not as ENOSPC.
FULL_DISK_MARGIN = 1 << 20
MIB = 1 << 20


class DiskFull(UserInputError):
    """A write that ran out of space: what it names (folder, space) is the user's to fix."""


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _ran_out_of_space(error, folder):
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_MARGIN
    except OSError:
        return False


def _disk_full(path, folder, tmp):
    written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
    free = shutil.disk_usage(folder).free
    return DiskFull(f"no space left in {folder} writing {os.path.basename(path)} ({free / MIB:.1f} MiB free; it"
                    f" needs more than the {written / MIB:.1f} MiB it had written); nothing half-written was kept:"
                    " free some space and run again")


def _not_writable(path, error):
    return UserInputError(f"{path}: cannot be written ({error.strerror}); make its folder writable and run again")


def _replace(tmp, path):
    """Rename the written file onto `path`; a folder there (left by a user or a hostile workdir), or a folder or
    file the user may not change, is refused."""
    try:
        os.replace(tmp, path)
    except IsADirectoryError:
        raise UserInputError(f"{path}: a folder where this file is written; remove it and run again") from None
    except PermissionError as error:
        raise _not_writable(path, error) from None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's folder; on success rename it onto `path`, else delete it
    (on SIGTERM too, which greedyhash_common.infra.errors turns into an exception). A write that fails for
    want of space is a DiskFull naming the folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    try:
        handle, tmp = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=suffix, dir=folder)
    except PermissionError as error:
        raise _not_writable(path, error) from None
    except OSError as error:
        if _ran_out_of_space(error, folder):
            raise _disk_full(path, folder, "") from None
        raise
    os.close(handle)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes owner-only files; give the usual mode
    try:
        yield tmp
        _replace(tmp, path)
    except UserInputError:
        raise
    except Exception as error:
        if _ran_out_of_space(error, folder):
            raise _disk_full(path, folder, tmp) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)


def remove_if_present(path):
    """Remove the file `path` when it is there; one it cannot remove (a folder in its place, a file the user
    may not change) is refused in one line."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise UserInputError(f"{path}: cannot be removed ({error.strerror}); remove it yourself and run"
                             " again") from None


def remove_temporary_files(folder):
    """Remove what interrupted atomic writes left in `folder` (files and folders named TEMPORARY_PREFIX...)."""
    if not os.path.isdir(folder):
        return []
    removed = [entry.path for entry in os.scandir(folder) if entry.name.startswith(TEMPORARY_PREFIX)]
    for path in removed:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    return removed


def replace_folder(folder, fill):
    """Replace `folder` whole by what `fill(staging)` writes into a staging folder beside it (folder + ".new"):
    a failing fill leaves `folder` as it was."""
    staging = folder.rstrip(os.sep) + ".new"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    fill(staging)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
