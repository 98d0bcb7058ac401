"""Reading pickles that may come from someone else without executing what they contain.

CIFAR-10 batches, Paddle `.pdparams` files and `reprod_log` `.npy` files are all pickles. A plain
`pickle.load` would run any callable such a file names; the unpickler here admits only numpy's array
reconstruction (plus the builtin containers and scalars, which pickle builds without a lookup).
"""
import io
import pickle

import numpy as np

from .errors import UserInputError

_NUMPY_ARRAY_GLOBALS = frozenset(
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
) | {("numpy", "ndarray"), ("numpy", "dtype")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _NUMPY_ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"it refers to {module}.{name}, which is not part of a plain container of numpy arrays"
        )


def loads_numpy_only(data, source, encoding="ASCII"):
    """Unpickle `data` admitting only containers, scalars and numpy arrays; `source` names it in errors."""
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError) as error:
        raise UserInputError(f"{source}: not a readable pickle of numpy arrays ({error})") from None


def load_numpy_only(path, encoding="ASCII"):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise UserInputError(f"{path}: cannot read ({error.strerror})") from None
    return loads_numpy_only(data, path, encoding=encoding)


def load_npy_dict(path):
    """Read a `reprod_log` file (`np.save` of a dict of arrays) without `allow_pickle=True`."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = read_header(handle)
            payload = handle.read()
    except OSError as error:
        raise UserInputError(f"{path}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise UserInputError(f"{path}: not a .npy file ({error})") from None
    if dtype != np.dtype(object) or shape != ():
        raise UserInputError(f"{path}: expected a saved dict (object scalar), found {dtype} {shape}")
    saved = loads_numpy_only(payload, path, encoding="latin1")
    content = saved.item() if isinstance(saved, np.ndarray) and saved.shape == () else saved
    if not isinstance(content, dict) or not all(
        isinstance(key, str) and isinstance(value, np.ndarray) for key, value in content.items()
    ):
        raise UserInputError(f"{path}: expected a dict of named numpy arrays")
    return content
