"""Reading the python version of CIFAR-10 from its folder or its archive, with every defect reported.

The six batches are Python 2 pickles; they are read with the restricted unpickler of `safe_pickle`,
so a tampered file cannot run code. Images come back HWC in the reference order (data_batch_1..5,
then test_batch), the order DeepHash-pytorch concatenates them in before drawing the split.
"""
import hashlib
import os
import tarfile
import zlib

import numpy as np

from ..hyperparameters import NUM_CLASSES
from ..infra.bounded_read import open_regular, read_bounded
from ..infra.errors import UserInputError
from ..infra.safe_pickle import loads_numpy_only

FOLDER_NAME = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
DOWNLOAD_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
TRAIN_BATCH_NAMES = tuple(f"data_batch_{number}" for number in range(1, 6))
TEST_BATCH_NAME = "test_batch"
BATCH_NAMES = TRAIN_BATCH_NAMES + (TEST_BATCH_NAME,)
META_NAME = "batches.meta"

IMAGE_HEIGHT = IMAGE_WIDTH = 32
CHANNELS = 3
ROW_LENGTH = CHANNELS * IMAGE_HEIGHT * IMAGE_WIDTH

# The largest file the format holds: a batch has 10,000 images; besides each image's row, a pickled
# batch stores its label and file name (about 40 bytes; 128 allowed). CIFAR-10's own batches are 31.0 MB.
IMAGES_PER_BATCH = 10_000
BATCH_FILE_LIMIT = IMAGES_PER_BATCH * (ROW_LENGTH + 128)
# The archive holds the six batches and two small files (163 MB compressed, 178 MB unpacked), as a
# small number of tar members: a larger archive, or one of many members, is not CIFAR-10.
ARCHIVE_FILE_LIMIT = (len(TRAIN_BATCH_NAMES) + 2) * BATCH_FILE_LIMIT
ARCHIVE_MEMBER_LIMIT = 64

# CIFAR-10's class names, in label order (batches.meta's label_names).
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

WHERE_TO_PUT_CIFAR10 = (
    f"for CIFAR-10, point --data at {ARCHIVE_NAME} from {DOWNLOAD_PAGE}, at the {FOLDER_NAME}/ "
    "folder extracted from it, or at a folder holding either (nothing is downloaded automatically); "
    "without --data the built-in synthetic data is used"
)


def load_cifar10(path):
    """Read all six batches: (images uint8 (N, 32, 32, 3), labels int64 (N,)) in the reference order."""
    source = locate_cifar10(os.fspath(path))
    if os.path.isdir(source):
        batches = [_read_batch_file(os.path.join(source, name)) for name in BATCH_NAMES]
    else:
        batches = _read_batches_from_archive(source)
    images = np.concatenate([_rows_to_hwc(data) for data, _ in batches])
    labels = np.concatenate([batch_labels for _, batch_labels in batches])
    return images, labels


def dataset_digest(images, labels):
    """A sha256 over both arrays' shapes, dtypes and bytes: identifies the data a split was made for."""
    digest = hashlib.sha256()
    for array in (images, labels):
        array = np.ascontiguousarray(array)
        digest.update(repr((array.shape, array.dtype.str)).encode())
        digest.update(array.data)
    return digest.hexdigest()


def locate_cifar10(path):
    """Map a user's path to the batches folder or the archive holding CIFAR-10."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise UserInputError(f"{path}: no such file or folder; {WHERE_TO_PUT_CIFAR10}")
    for candidate in (os.path.join(path, FOLDER_NAME), os.path.join(path, ARCHIVE_NAME)):
        if os.path.exists(candidate):
            return candidate
    if not any(os.path.exists(os.path.join(path, name)) for name in BATCH_NAMES):
        raise UserInputError(f"{path}: no CIFAR-10 found in this folder; {WHERE_TO_PUT_CIFAR10}")
    return path


def _read_batch_file(path):
    try:
        data = read_bounded(path, BATCH_FILE_LIMIT, "CIFAR-10 batch")
    except OSError as error:
        raise UserInputError(f"{path}: cannot read this CIFAR-10 batch ({error.strerror})") from None
    return _parse_batch(data, path)


def _read_batches_from_archive(archive):
    member_names = [f"{FOLDER_NAME}/{name}" for name in BATCH_NAMES]
    try:
        with open_regular(archive, ARCHIVE_FILE_LIMIT, "CIFAR-10 archive") as handle, \
                tarfile.open(fileobj=handle, mode="r:*") as tar:
            contents = _read_members(tar, archive, set(member_names))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise UserInputError(f"{archive}: not a readable tar archive of CIFAR-10 ({error})") from None
    return [_parse_batch(contents[name], f"{archive}:{name}") for name in member_names]


def _read_members(tar, archive, member_names):
    """Read the named members in one pass: a gzip stream cannot seek back without decompressing again."""
    contents = {}
    for count, member in enumerate(tar, start=1):
        if count > ARCHIVE_MEMBER_LIMIT:
            raise UserInputError(f"{archive}: more than {ARCHIVE_MEMBER_LIMIT} members; not a CIFAR-10 archive")
        if member.name not in member_names:
            continue
        # Links and special members could point outside the archive; a real CIFAR-10 tar has none.
        if not member.isfile():
            raise UserInputError(f"{archive}:{member.name}: not a regular file in the archive")
        if member.size > BATCH_FILE_LIMIT:
            raise UserInputError(f"{archive}:{member.name}: {member.size} bytes, larger than a CIFAR-10 batch can be"
                                 f" ({BATCH_FILE_LIMIT} at most)")
        contents[member.name] = tar.extractfile(member).read()
        if contents.keys() == member_names:
            break
    missing = sorted(member_names - contents.keys())
    if missing:
        raise UserInputError(f"{archive}: the archive has no member {', '.join(missing)}")
    return contents


def _parse_batch(data, source):
    """Check one unpickled batch and return (data rows uint8 (n, 3072), labels int64 (n,))."""
    batch = loads_numpy_only(data, source, encoding="bytes")
    if not isinstance(batch, dict):
        raise UserInputError(f"{source}: expected a dict, found {type(batch).__name__}")
    missing = [key for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise UserInputError(f"{source}: missing key(s) {', '.join(map(repr, missing))}; "
                             f"found {', '.join(sorted(map(repr, batch)))}")
    rows = _check_rows(batch[b"data"], source)
    labels = _check_labels(batch[b"labels"], len(rows), source)
    return rows, labels


def _check_rows(rows, source):
    if not isinstance(rows, np.ndarray) or rows.dtype != np.uint8:
        kind = rows.dtype if isinstance(rows, np.ndarray) else type(rows).__name__
        raise UserInputError(f"{source}: b'data' must be a uint8 array, found {kind}")
    if rows.ndim != 2 or rows.shape[1] != ROW_LENGTH:
        raise UserInputError(f"{source}: b'data' must have shape (N, {ROW_LENGTH}), found {rows.shape}")
    return rows


def _check_labels(labels, expected_count, source):
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise UserInputError(f"{source}: b'labels' must be a list of integers")
    if len(labels) != expected_count:
        raise UserInputError(
            f"{source}: {len(labels)} labels for {expected_count} images in b'data'")
    out_of_range = labels[(labels < 0) | (labels >= NUM_CLASSES)]
    if out_of_range.size:
        raise UserInputError(
            f"{source}: labels must lie in 0..{NUM_CLASSES - 1}, found {out_of_range[0]}")
    return labels.astype(np.int64)


def _rows_to_hwc(rows):
    """The files store each image as 3 planes of 32x32 (CHW); the models' loaders expect HWC."""
    return rows.reshape(-1, CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH).transpose(0, 2, 3, 1)
