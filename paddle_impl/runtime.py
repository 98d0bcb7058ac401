"""Process-wide Paddle settings, made once at the start of every entry point, as torch_impl.runtime does."""
import os
import platform

import paddle

from greedyhash_common.infra.cpu_math import mkl_dispatch_environment, mkl_dispatch_setting
from greedyhash_common.infra.runtime_settings import thread_environment


def configure(threads, deterministic=False, mkl_avx2_on_amd=True):
    """Use `threads` CPU threads (children inherit the count); optionally deterministic GPU kernels.

    Paddle's CPU kernels run on one thread unless told otherwise, and `import paddle` pins
    OMP_NUM_THREADS to 1 when it is unset, so the count is always set explicitly.

    `mkl_avx2_on_amd`: on an AMD CPU with AVX2, let Paddle's bundled MKL 2019 use its AVX2 kernels
    instead of its generic ones (greedyhash_common.infra.cpu_math): convolutions and Linear layers run faster
    (docs/performance.md, Threads and math library). MKL reads the variable at its first call, so this
    must run before any computation. Nothing changes on other CPUs or when the user has set the variable;
    False keeps MKL's vendor dispatch."""
    os.environ.update(thread_environment(threads))
    if mkl_avx2_on_amd:
        os.environ.update(mkl_dispatch_environment())
    paddle.base.core.set_num_threads(threads)
    if deterministic and has_gpu():  # a GPU matter: the CPU build has not even the flag, the CPU is deterministic
        paddle.set_flags({"FLAGS_cudnn_deterministic": True})


def has_gpu():
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def _cudnn_deterministic():
    """None on a build without cuDNN (the flag does not exist there)."""
    try:
        return bool(paddle.get_flags(["FLAGS_cudnn_deterministic"])["FLAGS_cudnn_deterministic"])
    except ValueError:
        return None


def describe(threads, dtype):
    return {
        "framework": "paddle",
        "version": paddle.__version__,
        "python": platform.python_version(),
        "device": paddle.device.cuda.get_device_name() if has_gpu() else "cpu",
        "threads": threads,
        "mkl_cpu_dispatch": mkl_dispatch_setting(),
        "dtype": dtype,
        "cudnn_deterministic": _cudnn_deterministic(),
    }
