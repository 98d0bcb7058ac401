"""A small synthetic stand-in for CIFAR-10, written in exactly the layout of the python version.

It lets every script run without the real data (nothing is ever downloaded). Each class has its
own combination of background colour, foreground shape and stripe orientation, and every image
jitters position, size, colours, stripe phase and pixel noise: a small CNN separates the classes
after a few epochs, while a nearest-class-mean on raw pixels stays far from perfect.
"""
import pickle
import struct
from pathlib import Path

import numpy as np

from ..hyperparameters import NUM_CLASSES, SEED
from ..infra.atomic import atomic_path
from ..infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from .cifar10 import (CHANNELS, CLASS_NAMES, FOLDER_NAME, IMAGE_HEIGHT, IMAGE_WIDTH, META_NAME, ROW_LENGTH,
                      TEST_BATCH_NAME, TRAIN_BATCH_NAMES)

BUILTIN_IMAGES_PER_CLASS = 120
BUILTIN_SEED = SEED
# Bump whenever the drawing below changes, so cached built-in copies are regenerated.
RECIPE_VERSION = 1

TEST_FRACTION_DENOMINATOR = 6  # CIFAR-10 keeps 1,000 of each class's 6,000 images for test_batch

# Two classes share each colour and each shape, never both, so no single cue decides the class.
_PALETTE = np.array([[200, 60, 50], [60, 160, 70], [50, 90, 200], [210, 190, 60], [150, 70, 180]],
                    dtype=np.float64)
_SHAPES = ("disc", "square", "triangle", "cross", "ring")
_COLOUR_JITTER = 25.0
_STRIPE_AMPLITUDE = 35.0
_STRIPE_PERIOD = 6.0
_PIXEL_NOISE = 12.0
_SHAPE_RADIUS = 8.0
_MAX_SHIFT = 6.0


def builtin_parameters():
    """What the cached built-in data was generated with; a change means it must be regenerated."""
    return {"recipe_version": RECIPE_VERSION, "images_per_class": BUILTIN_IMAGES_PER_CLASS,
            "seed": BUILTIN_SEED}


def write_synthetic_cifar10(out_dir, images_per_class, seed):
    """Write out_dir/cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)."""
    if not isinstance(images_per_class, int) or images_per_class < TEST_FRACTION_DENOMINATOR:
        raise UserInputError(
            f"images per class must be an integer of at least {TEST_FRACTION_DENOMINATOR} "
            f"(1/{TEST_FRACTION_DENOMINATOR} of them go to test_batch), got {images_per_class}")
    if not isinstance(seed, int) or seed < 0:
        raise UserInputError(f"the seed must be a non-negative integer, got {seed}")
    rng = np.random.default_rng(seed)
    images, labels = _draw_dataset(images_per_class, rng)
    train, test = _train_test_positions(labels, images_per_class, rng)
    folder = Path(out_dir) / FOLDER_NAME
    train_batches = np.array_split(train, len(TRAIN_BATCH_NAMES))
    for number, (name, positions) in enumerate(zip(TRAIN_BATCH_NAMES, train_batches), start=1):
        batch_label = f"training batch {number} of {len(TRAIN_BATCH_NAMES)}"
        _write_batch(folder / name, batch_label, images, labels, positions)
    _write_batch(folder / TEST_BATCH_NAME, "testing batch 1 of 1", images, labels, test)
    _write_python2_pickle(folder / META_NAME, {
        b"label_names": [name.encode() for name in CLASS_NAMES],
        b"num_cases_per_batch": len(train_batches[0]),
        b"num_vis": ROW_LENGTH,
    })


def _draw_dataset(images_per_class, rng):
    """All images, class after class: uint8 (N, 32, 32, 3) and int64 labels (N,)."""
    labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), images_per_class)
    images = np.stack([_draw_image(label, rng) for label in labels])
    return images, labels


def _draw_image(label, rng):
    colour = _PALETTE[label % len(_PALETTE)]
    rows, cols = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH].astype(np.float64)
    image = np.empty((IMAGE_HEIGHT, IMAGE_WIDTH, CHANNELS))
    image[:] = colour + rng.normal(0.0, _COLOUR_JITTER, CHANNELS)
    image += _STRIPE_AMPLITUDE * _stripes(label, rows, cols, rng)[..., None]
    centre = (IMAGE_HEIGHT - 1) / 2 + rng.uniform(-_MAX_SHIFT, _MAX_SHIFT, 2)
    radius = _SHAPE_RADIUS * rng.uniform(0.7, 1.3)
    mask = _shape_mask(_SHAPES[label // 2], rows - centre[0], cols - centre[1], radius)
    image[mask] = 255.0 - colour + rng.normal(0.0, _COLOUR_JITTER, CHANNELS)
    image += rng.normal(0.0, _PIXEL_NOISE, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _stripes(label, rows, cols, rng):
    """Stripes whose orientation tells the class (label * 18 degrees); their phase is random."""
    angle = np.pi * label / NUM_CLASSES + rng.normal(0.0, 0.1)
    along = cols * np.cos(angle) + rows * np.sin(angle)
    return np.sin(2 * np.pi * along / _STRIPE_PERIOD + rng.uniform(0.0, 2 * np.pi))


def _shape_mask(shape, dy, dx, radius):
    distance = np.hypot(dy, dx)
    if shape == "disc":
        return distance <= radius
    if shape == "square":
        return np.maximum(np.abs(dy), np.abs(dx)) <= 0.85 * radius
    if shape == "triangle":
        height = 0.9 * radius
        return (np.abs(dy) <= height) & (np.abs(dx) <= (dy + height) / 2)
    if shape == "cross":
        arm = 0.3 * radius
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= radius)) | (
            (np.abs(dy) <= arm) & (np.abs(dx) <= radius))
    return (distance <= radius) & (distance >= 0.55 * radius)  # ring


def _train_test_positions(labels, images_per_class, rng):
    """5/6 of each class for training and 1/6 for test, each set shuffled so classes interleave."""
    test_per_class = images_per_class // TEST_FRACTION_DENOMINATOR
    position_in_class = np.arange(len(labels)) % images_per_class
    is_test = position_in_class >= images_per_class - test_per_class
    return rng.permutation(np.flatnonzero(~is_test)), rng.permutation(np.flatnonzero(is_test))


def _write_batch(path, batch_label, images, labels, positions):
    chw_rows = images[positions].transpose(0, 3, 1, 2).reshape(len(positions), ROW_LENGTH)
    _write_python2_pickle(path, {
        b"batch_label": batch_label.encode(),
        b"labels": [int(label) for label in labels[positions]],
        b"data": np.ascontiguousarray(chw_rows),
        b"filenames": [f"synthetic_{CLASS_NAMES[labels[i]]}_s_{i:06d}.png".encode()
                       for i in positions],
    })


class _Python2StringPickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: bytes become py2 `str` opcodes.

    Python 3 writes bytes at protocol 2 as a call to `_codecs.encode`, which the restricted
    unpickler rightly refuses; the real CIFAR-10 files hold plain strings, and so do these.
    Only the pure-Python pickler lets one opcode writer be replaced, hence `pickle._Pickler`.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_bytes_as_python2_string(self, data):
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<I", len(data)) + data)
        self.memoize(data)

    dispatch[bytes] = _save_bytes_as_python2_string


def _write_python2_pickle(path, content):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            _Python2StringPickler(handle, protocol=2).dump(content)


def _parse_args(argv):
    parser = OneLineArgumentParser(
        prog="python -m greedyhash_common.data.synthetic_cifar10",
        description="Write a synthetic CIFAR-10 in the layout of the python version.")
    parser.add_argument("out_dir", help=f"folder to create {FOLDER_NAME}/ in")
    parser.add_argument("--per-class", type=int, default=BUILTIN_IMAGES_PER_CLASS,
                        help="images per class (default %(default)s)")
    parser.add_argument("--seed", type=int, default=BUILTIN_SEED, help="default %(default)s")
    return parser.parse_args(argv)


@exits_cleanly_on_bad_input
def main(argv=None):
    args = _parse_args(argv)
    write_synthetic_cifar10(args.out_dir, args.per_class, args.seed)
    print(f"wrote {NUM_CLASSES * args.per_class} images to {Path(args.out_dir) / FOLDER_NAME}")


if __name__ == "__main__":
    main()
