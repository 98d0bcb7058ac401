"""Faster loaders on the Paddle side, giving bit for bit the batches of paddle_impl.data's loaders.

Same arguments as `eval_loader` and `train_loader`, with `workers` threads instead of worker
processes; see greedyhash_common.data.batched_loader for how (a batch at a time, the normalization as a
table made by paddle.vision's own ToTensor and Normalize, batches prepared ahead in threads).
"""
import paddle

from greedyhash_common.data.batched_loader import BatchedLoader, SequentialBatches, table_from_chw, value_ramp_image
from greedyhash_common.hyperparameters import IMAGE_SIZE

from .data import SharedOrderBatchSampler, reference_transform


def resize_and_table(size=IMAGE_SIZE):
    """(the reference Resize transform, the (3, 256) table of the reference ToTensor + Normalize)."""
    transform = reference_transform(size)
    resize, *rest = transform.transforms
    to_tensor_and_normalize = type(transform)(rest)
    return resize, table_from_chw(to_tensor_and_normalize(value_ramp_image()).numpy())


def _to_tensor(array):
    """On the CPU without a copy (paddle.to_tensor copies, as long as the rest of the pipeline takes:
    docs/performance.md, The loaders); elsewhere onto Paddle's current device, where its DataLoader puts
    batches."""
    if paddle.get_device() == "cpu":
        return paddle.utils.dlpack.from_dlpack(array.__dlpack__())
    return paddle.to_tensor(array)


def to_tensors(images, labels):
    return _to_tensor(images), _to_tensor(labels)


def eval_loader(images, labels, batch_size, size=IMAGE_SIZE, workers=0):
    """In dataset order, every image once: paddle_impl.data.eval_loader's batches."""
    resize, table = resize_and_table(size)
    return BatchedLoader(images, labels, SequentialBatches(len(images), batch_size), resize, table, to_tensors,
                         workers)


def train_loader(images, labels, batch_size, seed, size=IMAGE_SIZE, workers=0, rank=0, world_size=1):
    """paddle_impl.data.train_loader's batches; `loader.batch_sampler.set_epoch(epoch)` as there."""
    resize, table = resize_and_table(size)
    sampler = SharedOrderBatchSampler(len(images), batch_size, seed, rank=rank, world_size=world_size)
    return BatchedLoader(images, labels, sampler, resize, table, to_tensors, workers)
