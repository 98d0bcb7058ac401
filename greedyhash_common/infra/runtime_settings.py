"""Environment settings both frameworks' entry points apply the same way."""
import os
import warnings

from .paddle_cuda_libraries import link_paddle_cuda_libraries


def thread_environment(threads):
    """The variables that fix the thread count of OpenMP and MKL, for this process and its children."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def quiet_paddle_import():
    """Prepare this process for `import paddle`; every entry point calls it before Paddle is imported.

    - Paddle warns "No ccache found" at every import and logs glog lines, and its GPU build on a machine
      without a GPU warns that it uses the CPU (each tool's run description says the device); none of
      it concerns a user.
    - Paddle prints two lines to stderr at import whenever OMP_NUM_THREADS is above 1 (they would break
      a one-line error): the variable is dropped, since every entry point sets its thread count after
      the import (each runtime's configure).
    - Paddle 2.6's GPU build finds CUDA's libraries in the environment's NVIDIA packages
      (greedyhash_common/infra/paddle_cuda_libraries.py).
    - Pillow is loaded first: Paddle 2.6's library exports zlib's symbols, and a Pillow loaded after it
      binds to them, so that writing a PNG crashes the process (segmentation fault in deflateReset).
    """
    warnings.filterwarnings("ignore", message=".*ccache.*")
    warnings.filterwarnings("ignore", message="You are using GPU version Paddle")
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.pop("OMP_NUM_THREADS", None)
    link_paddle_cuda_libraries()
    import PIL.Image  # noqa: F401
