"""One error type for bad input, and the wrapper that turns it into a message and an exit status."""
import functools
import sys

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's status for a process stopped by SIGINT (128 + 2)


class UserInputError(Exception):
    """A problem the user can fix (a missing file, a corrupt checkpoint, a wrong option)."""


def exits_cleanly_on_bad_input(main):
    """Wrap a command-line entry point so bad input prints one clear line and exits non-zero, and Ctrl-C
    one line instead of the traceback of whatever framework call it interrupted."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserInputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            print("interrupted (Ctrl-C)", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper
