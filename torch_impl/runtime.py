"""Process-wide torch settings, made once at the start of every entry point, as paddle_impl.runtime does."""
import os
import platform

import torch

from greedyhash_common.infra.cpu_math import mkl_dispatch_environment, mkl_dispatch_setting
from greedyhash_common.infra.runtime_settings import thread_environment


def configure(threads, deterministic=False, mkl_avx2_on_amd=True):
    """Use `threads` CPU threads (children inherit the count); optionally deterministic GPU kernels.

    `mkl_avx2_on_amd`: the variable that lets Paddle's bundled MKL use its AVX2 kernels on an AMD CPU
    (greedyhash_common.infra.cpu_math); torch's own MKL ignores it, it is set here as on the Paddle side so
    that both processes run in the same environment."""
    os.environ.update(thread_environment(threads))
    if mkl_avx2_on_amd:
        os.environ.update(mkl_dispatch_environment())
    torch.set_num_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)  # an op without such a kernel warns, named
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def has_gpu():
    return torch.cuda.is_available()


def describe(threads, dtype):
    return {
        "framework": "torch",
        "version": torch.__version__,
        "torchvision": __import__("torchvision").__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if has_gpu() else "cpu",
        "threads": threads,
        "mkl_cpu_dispatch": mkl_dispatch_setting(),
        "dtype": dtype,
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
    }
