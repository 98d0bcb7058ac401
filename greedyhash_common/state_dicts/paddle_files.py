"""Reading and writing Paddle `.pdparams` files as name -> numpy array dicts, without importing paddle.

A `.pdparams` file is a pickle of a dict of numpy arrays (what `paddle.save` writes for a state dict,
and what `paddle.load` reads back as tensors). Reading goes through the restricted unpickler, so a
file from someone else cannot run code.
"""
import pickle
import zipfile

import numpy as np

from ..infra.atomic import atomic_path
from ..infra.bounded_read import check_regular
from ..infra.errors import UserInputError
from ..infra.safe_pickle import load_numpy_only
from .layout import PADDLE_NAME_TABLE_KEY

PADDLE_PICKLE_PROTOCOL = 4  # the protocol paddle.save uses


def read_paddle_file(path):
    """The unpickled content of a Paddle file (a .pdparams or a training checkpoint), read safely."""
    check_regular(path, "Paddle file")
    if zipfile.is_zipfile(path):  # torch saves zip archives; a pickle error would not say what the file is
        raise UserInputError(f"{path}: a torch checkpoint, not a Paddle one; convert its weights with "
                             f"python -m weights_convert torch2paddle {path} weights.pdparams")
    return load_numpy_only(path, encoding="latin1")


def read_paddle_state(path):
    content = read_paddle_file(path)
    if not isinstance(content, dict) or not content:
        raise UserInputError(f"{path}: expected a dict of named arrays (a Paddle state dict)")
    state = {key: value for key, value in content.items() if key != PADDLE_NAME_TABLE_KEY}
    return check_named_arrays(state, path)


def check_named_arrays(state, path):
    not_arrays = [str(key) for key, value in state.items()
                  if not isinstance(key, str) or not isinstance(value, np.ndarray)]
    if not_arrays:
        raise UserInputError(f"{path}: entries that are not named arrays: {', '.join(not_arrays[:5])}")
    return state


def write_paddle_state(state, path):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            pickle.dump(dict(state), handle, protocol=PADDLE_PICKLE_PROTOCOL)
