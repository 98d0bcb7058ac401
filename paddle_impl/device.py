"""The device and data-parallel processes on the Paddle side (torch_impl.device mirrors it).

Data parallel runs under paddle.distributed.launch (`python -m paddle.distributed.launch --devices 0,1
-m paddle_impl.train ...`, or `--nproc_per_node N` on the CPU, where it uses gloo). Without it there is
one process and every collective below is a no-op.
"""
import os

import paddle
import paddle.distributed as dist

from greedyhash_common.app.cli_options import resolve_device

from .runtime import has_gpu

FRAMEWORK = "paddle"


def select_device(requested, local_rank=0):
    """Make 'cpu', 'gpu' or None (the GPU when there is one) Paddle's device; return its name."""
    name = resolve_device(requested, has_gpu(), FRAMEWORK)
    paddle.set_device(f"gpu:{local_rank}" if name == "gpu" else "cpu")
    return name


def device_name(device):
    return device


def current_device_name():
    """'gpu' or 'cpu': the kind of Paddle's current device (select_device's choice)."""
    return "gpu" if paddle.get_device().startswith("gpu") else "cpu"


def process_group():
    """(rank, GPU index, world size) as paddle.distributed.launch sets them; (0, 0, 1) for a single process."""
    environment = dist.ParallelEnv()
    # launch gives each process its GPU in FLAGS_selected_gpus (ParallelEnv.device_id fails on a CPU build).
    gpu = int(os.environ.get("FLAGS_selected_gpus", "0").split(",")[0])
    return environment.rank, gpu, environment.world_size


def init_data_parallel(device, world_size):
    if world_size > 1:
        dist.init_parallel_env()


def wrap_data_parallel(model, device, world_size):
    if world_size == 1:
        return model
    return paddle.DataParallel(model)


def sum_over_processes(values, device, world_size):
    if world_size == 1:
        return values
    total = paddle.to_tensor(values, dtype="float64")
    dist.all_reduce(total)
    return total.numpy().tolist()


def gather_from_processes(value, world_size):
    """Every process's `value`, in rank order (a collective: every process must call it)."""
    if world_size == 1:
        return [value]
    gathered = []
    dist.all_gather_object(gathered, value)
    return gathered


def finish_data_parallel(world_size):
    if world_size > 1:
        dist.barrier()
