"""Faster loaders on the Paddle side, giving bit for bit the batches of paddle_impl.data's loaders.

Same arguments as `eval_loader` and `train_loader`, with `workers` threads instead of worker
processes; see greedyhash_common.data.batched_loader for how (a batch at a time, the normalization as a
table made by paddle.vision's own ToTensor and Normalize, batches prepared ahead in threads).
"""
import paddle

from greedyhash_common.data.batched_loader import FrameworkLoaders

from .data import SharedOrderBatchSampler, reference_transform


def _to_tensor(array):
    """On the CPU without a copy (paddle.to_tensor copies, as long as the rest of the pipeline takes:
    docs/performance.md, The loaders); elsewhere onto Paddle's current device, where its DataLoader puts
    batches."""
    if paddle.get_device() == "cpu":
        return paddle.utils.dlpack.from_dlpack(array.__dlpack__())
    return paddle.to_tensor(array)


def to_tensors(images, labels):
    return _to_tensor(images), _to_tensor(labels)


LOADERS = FrameworkLoaders(reference_transform, SharedOrderBatchSampler, to_tensors)
eval_loader = LOADERS.eval_loader  # paddle_impl.data.eval_loader's batches
train_loader = LOADERS.train_loader  # paddle_impl.data.train_loader's batches
