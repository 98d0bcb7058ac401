"""Environment settings both frameworks' entry points apply the same way."""
import os
import warnings


def thread_environment(threads):
    """The variables that fix the thread count of OpenMP and MKL, for this process and its children."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def quiet_paddle_import():
    """Paddle warns "No ccache found" at every import and logs glog lines; neither concerns a user."""
    warnings.filterwarnings("ignore", message=".*ccache.*")
    os.environ.setdefault("GLOG_minloglevel", "2")


def import_paddle_quietly():
    """Import paddle as quiet_paddle_import prepares it, and without the two lines Paddle prints to stderr
    whenever OMP_NUM_THREADS is above 1 (they would break a one-line error): the variable is hidden
    during the import only. The thread count is set after the import by each runtime's configure."""
    quiet_paddle_import()
    threads = os.environ.pop("OMP_NUM_THREADS", None)
    try:
        import paddle  # noqa: F401
    finally:
        if threads is not None:
            os.environ["OMP_NUM_THREADS"] = threads
