"""One run per work folder at a time.

Two runs writing one folder read each other's files: a run's verdict would judge the other run's values.
A run holds an exclusive flock on LOCK_NAME in its folder for as long as it writes there; the kernel
releases it when the process ends, however it ends (SIGKILL, power loss), so a stale lock cannot block
the next run. The lock file holds the holder's pid and command, for the message of a run refused; a
run ending removes it (SIGKILL leaves an unlocked one, which the next run takes over).
"""
import contextlib
import fcntl
import os
import shlex
import stat
import sys

from .errors import UserInputError

LOCK_NAME = "run.lock"
COMMAND_LENGTH = 160  # characters of the other run's command quoted in a message


def _holder_description():
    command = shlex.join(getattr(sys, "orig_argv", sys.argv)).replace("\n", "\\n")
    if len(command) > COMMAND_LENGTH:
        command = command[:COMMAND_LENGTH] + "..."
    return f"pid {os.getpid()}: {command}"


def _open_lock_file(path, option):
    """The lock file, opened without following a link (a planted link must not make the run truncate
    another file) and only if it is a regular file."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise UserInputError(f"{option} {os.path.dirname(path)}: cannot open its lock file {LOCK_NAME}"
                             f" ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UserInputError(f"{option} {os.path.dirname(path)}: {LOCK_NAME} there is not a regular file")
    return descriptor


def _still_named(descriptor, path):
    """Whether `path` still names the open lock file: a run ending unlinks it, and a lock taken on the
    unlinked file would exclude no one."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _locked(path, option):
    """The descriptor of the lock file at `path`, locked by this process; UserInputError when another holds it."""
    while True:
        descriptor = _open_lock_file(path, option)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode("utf-8", errors="replace").strip()
            os.close(descriptor)
            folder = os.path.dirname(path)
            raise UserInputError(f"{option} {folder} is in use by another run ({holder or 'starting'}); wait for"
                                 f" it to end, or choose another {option}") from None
        if _still_named(descriptor, path):
            return descriptor
        os.close(descriptor)  # the run that held it ended meanwhile: lock the file that is there now


@contextlib.contextmanager
def holding_workdir(folder, option="--workdir"):
    """Hold `folder` (made if missing) for this run; refuse with the other run's pid and command when
    another process holds it. The lock file is removed when the run ends normally or by an exception, and
    the folder too when this run made it and left nothing in it (a run refused before its work)."""
    made = not os.path.isdir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UserInputError(f"{option} {folder}: cannot make this folder ({error.strerror})") from None
    path = os.path.join(folder, LOCK_NAME)
    descriptor = _locked(path, option)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (_holder_description() + "\n").encode(), 0)
        yield
    finally:
        if _still_named(descriptor, path):
            os.remove(path)
        os.close(descriptor)
        if made:
            with contextlib.suppress(OSError):  # rmdir removes only an empty folder, and it may be gone already
                os.rmdir(folder)
