"""Loaders that give exactly the reference loaders' batches, a batch at a time and in worker threads.

The reference loaders (torch_impl.data, paddle_impl.data) transform one image at a time: PIL bilinear
Resize 32 -> 224, ToTensor, Normalize, then collate. Most of that cost is outside the resize: per-image
framework calls, then collation (measured: docs/performance.md, The loaders). Here a whole batch is
prepared at once:

- Resize: the framework's own Resize transform on each PIL image, as the reference does (PIL releases
  the GIL while it resamples, so worker threads resize in parallel);
- ToTensor + Normalize: a table of 3 x 256 float32 values made by the framework's own ToTensor and
  Normalize from one image that holds every value 0..255 in every channel. A normalized pixel depends
  only on its channel and its uint8 value, so looking it up gives bit for bit what the transforms give
  (tests/test_bench.py compares whole batches against the reference loaders);
- batches are built by `workers` threads, up to `prefetch` batches ahead of the consumer, and handed
  over in order: the network does not wait for the pipeline while a batch is ready.

Nothing here imports a framework: torch_impl.fast_data and paddle_impl.fast_data supply the resize,
the table and the conversion of a numpy batch to their tensors.
"""
import collections
import concurrent.futures
import dataclasses
from typing import Callable

import numpy as np
from PIL import Image

from ..hyperparameters import IMAGE_SIZE

CHANNELS = 3
LEVELS = 256
DEFAULT_PREFETCH = 4


def value_ramp_image():
    """A 16 x 16 RGB image whose pixel k holds the value k in all three channels (k = 0..255)."""
    values = np.arange(LEVELS, dtype=np.uint8)
    return Image.fromarray(np.repeat(values, CHANNELS).reshape(16, 16, CHANNELS))


def table_from_chw(ramp_chw):
    """The (3, 256) float32 table from the transforms' output for value_ramp_image() (3, 16, 16)."""
    table = np.asarray(ramp_chw, dtype=np.float32).reshape(CHANNELS, LEVELS)
    return np.ascontiguousarray(table)


def normalize_with_table(resized_nhwc, table):
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), each value looked up in its channel's row."""
    count, height, width, _ = resized_nhwc.shape
    out = np.empty((count, CHANNELS, height, width), dtype=np.float32)
    for index in range(count):  # image by image: the indices and the output stay in the cache
        for channel in range(CHANNELS):
            np.take(table[channel], resized_nhwc[index, :, :, channel], out=out[index, channel])
    return out


class _Length:
    """Stands in for a DataLoader's `dataset` where only its length is used."""

    def __init__(self, length):
        self.length = length

    def __len__(self):
        return self.length


class BatchedLoader:
    """Iterates (images, labels) batches, converted by `to_framework`, in `batch_sampler`'s order.

    `resize` is the framework's Resize transform (PIL image -> PIL image), `table` the (3, 256)
    normalization table, `batch_sampler` an iterable of index lists (a SharedBatchOrder for training,
    consecutive chunks for evaluation). `workers` = 0 builds batches in the consumer's thread."""

    def __init__(self, images, labels, batch_sampler, resize, table, to_framework, workers=0,
                 prefetch=DEFAULT_PREFETCH):
        if workers < 0 or prefetch < 1:
            raise ValueError(f"workers must be >= 0 and prefetch >= 1, got {workers} and {prefetch}")
        self.images, self.labels = images, labels
        self.batch_sampler = batch_sampler
        self.dataset = _Length(len(images))
        self.resize, self.table, self.to_framework = resize, table, to_framework
        self.workers, self.prefetch = workers, prefetch

    def __len__(self):
        return len(self.batch_sampler)

    def numpy_batch(self, indices):
        """(float32 (N, 3, S, S) images, int64 (N,) labels) of the items at `indices`."""
        indices = np.asarray(indices, dtype=np.int64)
        resized = np.stack([np.asarray(self.resize(Image.fromarray(self.images[index]))) for index in indices])
        return normalize_with_table(resized, self.table), np.asarray(self.labels[indices], dtype=np.int64)

    def numpy_batches(self):
        """The batches as numpy arrays, in order (prepared ahead by the worker threads, if any)."""
        if self.workers == 0:
            for indices in self.batch_sampler:
                yield self.numpy_batch(indices)
            return
        with concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="batched-loader") as pool:
            pending = collections.deque()
            try:
                for indices in self.batch_sampler:
                    pending.append(pool.submit(self.numpy_batch, indices))
                    if len(pending) > self.prefetch:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def __iter__(self):
        for images, labels in self.numpy_batches():
            yield self.to_framework(images, labels)


class SequentialBatches:
    """Every index once, in order, in batches of `batch_size` (the last holds the remainder)."""

    def __init__(self, num_items, batch_size):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.num_items, self.batch_size = num_items, batch_size

    def __iter__(self):
        return (list(range(start, min(start + self.batch_size, self.num_items)))
                for start in range(0, self.num_items, self.batch_size))

    def __len__(self):
        return -(-self.num_items // self.batch_size)


@dataclasses.dataclass(frozen=True)
class FrameworkLoaders:
    """One framework's fast loaders, built from what its reference loaders use: torch_impl.fast_data and
    paddle_impl.fast_data each make one and export its two methods."""

    reference_transform: Callable  # size -> Compose(Resize, ToTensor, Normalize) of the framework
    batch_sampler: Callable  # (num_items, batch_size, seed, rank=, world_size=) -> the shared-order sampler
    to_tensors: Callable  # (images, labels) as numpy -> the framework's tensors

    def resize_and_table(self, size=IMAGE_SIZE):
        """(the reference Resize transform, the (3, 256) table of the reference ToTensor + Normalize)."""
        transform = self.reference_transform(size)
        resize, *rest = transform.transforms
        to_tensor_and_normalize = type(transform)(rest)
        return resize, table_from_chw(to_tensor_and_normalize(value_ramp_image()).numpy())

    def eval_loader(self, images, labels, batch_size, size=IMAGE_SIZE, workers=0):
        """In dataset order, every image once: the reference eval_loader's batches."""
        resize, table = self.resize_and_table(size)
        return BatchedLoader(images, labels, SequentialBatches(len(images), batch_size), resize, table,
                             self.to_tensors, workers)

    def train_loader(self, images, labels, batch_size, seed, size=IMAGE_SIZE, workers=0, rank=0, world_size=1):
        """The reference train_loader's batches; `loader.batch_sampler.set_epoch(epoch)` as there."""
        resize, table = self.resize_and_table(size)
        sampler = self.batch_sampler(len(images), batch_size, seed, rank=rank, world_size=world_size)
        return BatchedLoader(images, labels, sampler, resize, table, self.to_tensors, workers)
