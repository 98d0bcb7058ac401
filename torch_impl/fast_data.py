"""Faster loaders on the torch side, giving bit for bit the batches of torch_impl.data's loaders.

Same arguments as `eval_loader` and `train_loader`, with `workers` threads instead of worker
processes; see greedyhash_common.data.batched_loader for how (a batch at a time, the normalization as a
table made by torchvision's own ToTensor and Normalize, batches prepared ahead in threads).
"""
import torch

from greedyhash_common.data.batched_loader import FrameworkLoaders

from .data import SharedOrderBatchSampler, reference_transform


def to_tensors(images, labels):
    return torch.from_numpy(images), torch.from_numpy(labels)


LOADERS = FrameworkLoaders(reference_transform, SharedOrderBatchSampler, to_tensors)
eval_loader = LOADERS.eval_loader  # torch_impl.data.eval_loader's batches
train_loader = LOADERS.train_loader  # torch_impl.data.train_loader's batches
