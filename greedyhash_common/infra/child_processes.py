"""Child processes that end with the process that started them.

A side killed with its parent no longer writes into a work folder another run may own by then. Each
child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG, Linux), which covers a parent
killed with SIGKILL; and it leads a process group of its own, which the parent kills, with whatever the
child started, when it leaves `ending_together` by an error, Ctrl-C or SIGTERM. A command that cannot
start is a UserInputError naming the option that gave its interpreter.
"""
import contextlib
import ctypes
import os
import signal
import subprocess
import sys

from .errors import UserInputError

_PR_SET_PDEATHSIG = 1


def _dying_with(parent):
    """The code a child runs before exec: SIGKILL on its parent's death, and no start at all when the
    parent died already (the child was then adopted before it asked)."""
    def arrange():
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
    return arrange


def start_child(command, option, **popen_options):
    """Popen(command) dying with this process, in a process group of its own; `option` names where its
    interpreter came from (such as --paddle-python), for the message when it cannot start."""
    try:
        return subprocess.Popen(command, preexec_fn=_dying_with(os.getpid()), process_group=0, **popen_options)
    except OSError as error:
        raise UserInputError(f"{option} {command[0]}: cannot start it ({error.strerror})") from None


def stop(process):
    """Kill `process` and its process group, and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def ending_together():
    """Yield a list to append started children to; any that still run when the block leaves by an
    exception are killed before it propagates."""
    children = []
    try:
        yield children
    except BaseException:
        for process in children:
            stop(process)
        raise


def run_child(command, option, capture=True, **popen_options):
    """subprocess.run(command, text=True), its output captured unless not `capture`, for a child that
    dies with this process."""
    pipe = subprocess.PIPE if capture else None
    with ending_together() as children:
        children.append(start_child(command, option, stdout=pipe, stderr=pipe, text=True, **popen_options))
        stdout, stderr = children[0].communicate()
    return subprocess.CompletedProcess(command, children[0].returncode, stdout, stderr)
