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
