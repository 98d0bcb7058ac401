"""CIFAR-10 loaders on the Paddle side: the shared split, the shared batch order, paddle.vision's transforms.

paddle.vision's Resize uses PIL for a PIL image but OpenCV for a numpy array, and the two
interpolate differently; the dataset hands it PIL images, as torchvision gets them.

paddle.vision's ToTensor scales uint8 by 1/255 differently across versions: Paddle 3.x divides by 255
in float32, as torchvision does; Paddle 2.6 multiplies by the float32 reciprocal of 255, which is one
float32 ulp off for some values (the data step's difference it made on Paddle 2.6: docs/gpu.md, What CI
runs). Where it does (detected by what it computes, not by version), the loaders use DividingToTensor
instead, so every supported Paddle gives torchvision's values bit for bit.
"""
import functools

import numpy as np
import paddle
import paddle.vision.transforms as T
from PIL import Image

from greedyhash_common.data.batch_order import SharedBatchOrder
from greedyhash_common.hyperparameters import IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD


class DividingToTensor:
    """ToTensor as torchvision and Paddle 3.x compute it for an 8-bit RGB PIL image: float32(value) / 255,
    channels first."""

    def __call__(self, picture):
        array = np.asarray(picture)
        if array.dtype != np.uint8 or array.ndim != 3:
            raise ValueError(f"DividingToTensor takes 8-bit RGB images, got {array.dtype} {array.shape}")
        scaled = array.astype(np.float32) / np.float32(255)
        return paddle.to_tensor(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


@functools.lru_cache(maxsize=None)
def to_tensor_divides():
    """Whether paddle.vision's ToTensor gives float32(value) / 255 for every uint8 value (Paddle 3.x: yes;
    2.6: no). Asked lazily, at the first loader: the runtime must be configured before any computation."""
    values = np.arange(256, dtype=np.uint8)
    image = Image.fromarray(np.repeat(values, 3).reshape(16, 16, 3))
    expected = np.repeat(values.astype(np.float32) / np.float32(255), 3).reshape(16, 16, 3).transpose(2, 0, 1)
    return bool(np.array_equal(T.ToTensor()(image).numpy(), expected))


def reference_transform(size=IMAGE_SIZE):
    """Resize (PIL bilinear, 32 -> size), ToTensor, Normalize: the same for training and evaluation."""
    to_tensor = T.ToTensor() if to_tensor_divides() else DividingToTensor()
    return T.Compose([T.Resize(size, interpolation="bilinear"), to_tensor, T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class CifarImages(paddle.io.Dataset):
    """Images as PIL images, as the references load them (torch_impl.data.CifarImages mirrors it)."""

    def __init__(self, images, labels, transform):
        super().__init__()
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), np.int64(self.labels[index])


class SharedOrderBatchSampler(SharedBatchOrder, paddle.io.BatchSampler):
    """Batches in greedyhash_common.data.batch_order's order, a pure function of (seed, epoch): the other
    framework draws the same batches. With several processes each takes its shard of every batch."""


def train_loader(images, labels, batch_size, seed, size=IMAGE_SIZE, num_workers=0, rank=0, world_size=1):
    sampler = SharedOrderBatchSampler(len(images), batch_size, seed, rank=rank, world_size=world_size)
    return paddle.io.DataLoader(CifarImages(images, labels, reference_transform(size)),
                                batch_sampler=sampler, num_workers=num_workers)


def eval_loader(images, labels, batch_size, size=IMAGE_SIZE, num_workers=0):
    """In dataset order, every image once."""
    return paddle.io.DataLoader(CifarImages(images, labels, reference_transform(size)),
                                batch_size=batch_size, shuffle=False, num_workers=num_workers)


def to_numpy_batch(batch):
    images, labels = batch
    return images.numpy(), np.asarray(labels.numpy(), dtype=np.int64)
