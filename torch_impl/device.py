"""The device and data-parallel processes on the torch side (paddle_impl.device mirrors it).

Data parallel runs under torchrun (`torchrun --nproc_per_node N -m torch_impl.train ...`): NCCL on GPUs,
gloo on the CPU. Without torchrun there is one process and every collective below is a no-op.
"""
import os

import torch
import torch.distributed as dist

from greedyhash_common.app.cli_options import resolve_device

from .runtime import has_gpu

FRAMEWORK = "torch"


def select_device(requested, local_rank=0):
    """torch.device for 'cpu', 'gpu' or None (the GPU when there is one)."""
    if resolve_device(requested, has_gpu(), FRAMEWORK) == "cpu":
        return torch.device("cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def device_name(device):
    return "gpu" if device.type == "cuda" else "cpu"


def process_group():
    """(rank, local rank, world size) as torchrun sets them; (0, 0, 1) for a single process."""
    return tuple(int(os.environ.get(name, default)) for name, default in
                 (("RANK", 0), ("LOCAL_RANK", 0), ("WORLD_SIZE", 1)))


def init_data_parallel(device, world_size):
    if world_size > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def wrap_data_parallel(model, device, world_size):
    if world_size == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def sum_over_processes(values, device, world_size):
    if world_size == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def gather_from_processes(value, world_size):
    """Every process's `value`, in rank order (a collective: every process must call it)."""
    if world_size == 1:
        return [value]
    gathered = [None] * world_size
    dist.all_gather_object(gathered, value)
    return gathered


def finish_data_parallel(world_size):
    if world_size > 1:
        dist.destroy_process_group()
