"""One error type for bad input, and the wrapper that turns it into a message and an exit status."""
import argparse
import contextlib
import functools
import signal
import sys
import threading

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's status for a process stopped by SIGINT (128 + 2)
EXIT_TERMINATED = 128 + signal.SIGTERM


REASON_LENGTH = 200  # characters of a library's own explanation quoted in a message


class UserInputError(Exception):
    """A problem the user can fix (a missing file, a corrupt checkpoint, a wrong option)."""


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that what it was writing is cleaned up on the way out (an
    atomic write's temporary file, a run folder's first files, the child processes)."""


@contextlib.contextmanager
def terminating_by_exception():
    """SIGTERM raises Terminated for the duration (in the main thread; elsewhere signals are not ours)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def one_line_reason(error, message=None):
    """`Type: first line of the message` (of `message`, if given), shortened: numpy and the frameworks explain
    over many lines, and a message of this project is one line."""
    lines = [line.strip() for line in str(error if message is None else message).splitlines() if line.strip()]
    reason = lines[0] if lines else "no detail"
    if len(reason) > REASON_LENGTH:
        reason = reason[:REASON_LENGTH] + "..."
    return f"{type(error).__name__}: {reason}"


def child_failure(returncode, stderr):
    """One line for a child process that failed: its own `error:` line, else its exit status (or signal) and the
    last line it wrote to stderr (a traceback's last line names the exception)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if lines and lines[-1].startswith("error: "):
        return lines[-1].removeprefix("error: ")
    status = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    return f"{status}; " + (f"its last message: {lines[-1]}" if lines else "it wrote nothing to stderr")


def exits_cleanly_on_bad_input(main):
    """Wrap a command-line entry point so bad input prints one clear line and exits non-zero, and Ctrl-C
    one line instead of the traceback of whatever framework call it interrupted; SIGTERM the same way."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            with terminating_by_exception():
                return main(*args, **kwargs)
        except UserInputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            print("interrupted (Ctrl-C)", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        except Terminated:
            print("terminated (SIGTERM)", file=sys.stderr)
            sys.exit(EXIT_TERMINATED)

    return wrapper


class OneLineArgumentParser(argparse.ArgumentParser):
    """The parser of every entry point: an option argparse refuses (unknown, missing, out of range) gives one
    `error:` line and exit status 2, as any other bad input, not argparse's usage block."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (options: {self.prog} --help)\n")
