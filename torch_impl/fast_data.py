"""Faster loaders on the torch side, giving bit for bit the batches of torch_impl.data's loaders.

Same arguments as `eval_loader` and `train_loader`, with `workers` threads instead of worker
processes; see greedyhash_common.data.batched_loader for how (a batch at a time, the normalization as a
table made by torchvision's own ToTensor and Normalize, batches prepared ahead in threads).
"""
import torch

from greedyhash_common.data.batched_loader import BatchedLoader, SequentialBatches, table_from_chw, value_ramp_image
from greedyhash_common.hyperparameters import IMAGE_SIZE

from .data import SharedOrderBatchSampler, reference_transform


def resize_and_table(size=IMAGE_SIZE):
    """(the reference Resize transform, the (3, 256) table of the reference ToTensor + Normalize)."""
    transform = reference_transform(size)
    resize, *rest = transform.transforms
    to_tensor_and_normalize = type(transform)(rest)
    return resize, table_from_chw(to_tensor_and_normalize(value_ramp_image()).numpy())


def to_tensors(images, labels):
    return torch.from_numpy(images), torch.from_numpy(labels)


def eval_loader(images, labels, batch_size, size=IMAGE_SIZE, workers=0):
    """In dataset order, every image once: torch_impl.data.eval_loader's batches."""
    resize, table = resize_and_table(size)
    return BatchedLoader(images, labels, SequentialBatches(len(images), batch_size), resize, table, to_tensors,
                         workers)


def train_loader(images, labels, batch_size, seed, size=IMAGE_SIZE, workers=0, rank=0, world_size=1):
    """torch_impl.data.train_loader's batches; `loader.batch_sampler.set_epoch(epoch)` as there."""
    resize, table = resize_and_table(size)
    sampler = SharedOrderBatchSampler(len(images), batch_size, seed, rank=rank, world_size=world_size)
    return BatchedLoader(images, labels, sampler, resize, table, to_tensors, workers)
