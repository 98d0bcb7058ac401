"""Checks of the options every entry point runs before any work starts, defined once and shared by both
frameworks' tools, the converter and the alignment suite: image sizes AlexNet accepts, and the paths
results will be written to (checked now, not after an hour of evaluation). The suite's own options are
checked by the suite (alignment.option_checks)."""
import os
import tempfile

from ..infra.atomic import TEMPORARY_PREFIX
from ..infra.errors import UserInputError

# AlexNet's layers that change the spatial size, in order, as (kernel, stride, padding): conv1, pool,
# conv2, pool, conv3-5, pool (torchvision's `features`; both models build exactly these).
ALEXNET_SIZE_CHANGING_LAYERS = ((11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1),
                                (3, 2, 0))
WEIGHTS_SUFFIXES = (".pth", ".pdparams")


def feature_map_size(image_size):
    """Height (= width) of AlexNet's last feature map for square images of `image_size` pixels (<= 0: none)."""
    size = image_size
    for kernel, stride, padding in ALEXNET_SIZE_CHANGING_LAYERS:
        size = (size + 2 * padding - kernel) // stride + 1
        if size < 1:
            return 0
    return size


def _smallest_image_size():
    size = 1
    while feature_map_size(size) < 1:
        size += 1
    return size


SMALLEST_IMAGE_SIZE = _smallest_image_size()


def check_image_size(size, option="--image-size"):
    """Below SMALLEST_IMAGE_SIZE AlexNet's last feature map is empty: every output would be meaningless."""
    if not isinstance(size, int) or isinstance(size, bool) or size < SMALLEST_IMAGE_SIZE:
        raise UserInputError(f"{option} {size}: AlexNet needs images of at least {SMALLEST_IMAGE_SIZE} px "
                             "(smaller ones leave its last feature map empty); the reference size is 224")
    return size


def check_output_file(path, option):
    """`path` can be written as a file: it is not a folder, and its folder exists or can be made and
    takes new files."""
    if os.path.isdir(path):
        raise UserInputError(f"{option} {path}: a folder, not a file name")
    _check_can_create_in(os.path.dirname(os.path.abspath(path)), path, option)
    return path


def check_not_an_input(path, option, *inputs):
    """`path`, about to be written, is none of `inputs` under any name (the same path, ./ or a link to it): a
    tool never writes over what it reads."""
    for source in inputs:
        if source and os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise UserInputError(f"{option} {path}: the same file as the input {source}; writing it would destroy "
                                 "the input, choose another name")
    return path


def check_output_dir(path, option):
    """`path` can be used as an output folder: it is not a file, and it exists or can be made and takes
    new files."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserInputError(f"{option} {path}: a file, not a folder")
    _check_can_create_in(os.path.abspath(path), path, option)
    return path


def _check_can_create_in(folder, path, option):
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserInputError(f"{option} {path}: {existing} is a file, so no folder can be made there")
    try:  # os.access says yes to root even on a read-only file system: try it
        handle, probe = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=existing)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise UserInputError(f"{option} {path}: cannot write in {existing} ({error.strerror})") from None


def check_input_file(path, option):
    if not os.path.isfile(path):
        raise UserInputError(f"{option} {path}: no such file" + (", it is a folder" if os.path.isdir(path) else ""))
    return path


def check_weights_file(path, option="--weights"):
    check_input_file(path, option)
    if not path.endswith(WEIGHTS_SUFFIXES):
        raise UserInputError(f"{option} {path}: a checkpoint ends in {' or '.join(WEIGHTS_SUFFIXES)}")
    return path


def check_interpreter(path, option):
    """`path` is a program this process can start (a side's Python)."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise UserInputError(f"{option} {path}: no such program" + ("" if not os.path.exists(path) else
                                                                   ": not an executable file"))
    return path
