"""Write files so that a reader never sees a half-written one: write beside the target, then rename.

The file being written is named TEMPORARY_PREFIX + random + the target's suffix. A process killed while
writing (SIGKILL, power loss) leaves it behind; the name says it is no one's result, so the next start
of a training run removes those in its folder (remove_temporary_files), and `make clean` every one under
logs/.
"""
import contextlib
import os
import shutil
import tempfile

TEMPORARY_PREFIX = ".tmp-"


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's folder; on success rename it onto `path`, else delete it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    handle, tmp = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=suffix, dir=folder)
    os.close(handle)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes owner-only files; give the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)


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
