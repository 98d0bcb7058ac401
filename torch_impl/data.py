"""CIFAR-10 loaders on the torch side: the shared split, the shared batch order, torchvision's transforms."""
import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from greedyhash_common.data.batch_order import SharedBatchOrder
from greedyhash_common.hyperparameters import IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD


def reference_transform(size=IMAGE_SIZE):
    """Resize (PIL bilinear, 32 -> size), ToTensor, Normalize: the same for training and evaluation."""
    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BILINEAR), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class CifarImages(torch.utils.data.Dataset):
    """Images as PIL images, as the references load them (paddle_impl.data.CifarImages mirrors it)."""

    def __init__(self, images, labels, transform):
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


class SharedOrderBatchSampler(SharedBatchOrder, torch.utils.data.Sampler):
    """Batches in greedyhash_common.data.batch_order's order, a pure function of (seed, epoch): the other
    framework draws the same batches. With several processes each takes its shard of every batch."""


def train_loader(images, labels, batch_size, seed, size=IMAGE_SIZE, num_workers=0, rank=0, world_size=1):
    sampler = SharedOrderBatchSampler(len(images), batch_size, seed, rank=rank, world_size=world_size)
    return torch.utils.data.DataLoader(CifarImages(images, labels, reference_transform(size)),
                                       batch_sampler=sampler, num_workers=num_workers)


def eval_loader(images, labels, batch_size, size=IMAGE_SIZE, num_workers=0):
    """In dataset order, every image once."""
    return torch.utils.data.DataLoader(CifarImages(images, labels, reference_transform(size)),
                                       batch_size=batch_size, shuffle=False, num_workers=num_workers)


def to_numpy_batch(batch):
    images, labels = batch
    return images.numpy(), np.asarray(labels.numpy(), dtype=np.int64)
