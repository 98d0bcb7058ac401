"""The references' image pipeline, Resize(224) bilinear -> ToTensor -> Normalize(ImageNet), in
numpy and PIL only: a framework-free statement of what torchvision's and paddle.vision's transforms
must both produce."""
import numpy as np
from PIL import Image

from greedyhash_common.hyperparameters import IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD


def resize_bilinear(image_hwc, size=IMAGE_SIZE):
    return np.asarray(Image.fromarray(image_hwc).resize((size, size), Image.BILINEAR))


def normalize(images_nhwc_uint8, dtype=np.float64):
    """ToTensor (to [0, 1], channels first) then Normalize with ImageNet statistics."""
    scaled = images_nhwc_uint8.astype(dtype) / 255.0
    normalized = (scaled - np.asarray(IMAGENET_MEAN, dtype)) / np.asarray(IMAGENET_STD, dtype)
    return np.ascontiguousarray(normalized.transpose(0, 3, 1, 2))


def preprocess(images_nhwc_uint8, size=IMAGE_SIZE, dtype=np.float64):
    resized = np.stack([resize_bilinear(image, size) for image in images_nhwc_uint8])
    return normalize(resized, dtype)
