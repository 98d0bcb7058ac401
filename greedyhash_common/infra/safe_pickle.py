"""Reading pickles that may come from someone else without executing what they contain.

CIFAR-10 batches, Paddle `.pdparams` files and `reprod_log` `.npy` files are all pickles. A plain
`pickle.load` would run any callable such a file names. The unpickler here admits no callable of
numpy's at all: the names a pickled array uses (`_reconstruct`, `ndarray`, `dtype`, `scalar`) are
mapped to stand-ins that only record what the file describes. When the whole file is read, each
recorded array is built by this module from a fresh `np.dtype` of an allowed plain name (bool,
integers, floats, complex; `object` only for arrays of the pickle's own plain values), after its shape,
byte order and data length are checked. numpy's own `dtype.__setstate__` never sees the file's state:
a forged one could declare, say, an object dtype that holds no objects, and reading that array
would crash the process.
"""
import io
import pickle
import re
import tokenize

import numpy as np

from .bounded_read import open_regular
from .errors import UserInputError, one_line_reason

# Fixed-size numbers without pointers: any bytes of the right length are a valid value.
_PLAIN_DTYPE_NAME = re.compile(r"(b1|[iu](1|2|4|8)|f(2|4|8|16)|c(8|16|32))")
_OBJECT_DTYPE_NAME = re.compile(r"O(4|8)")
_BYTE_ORDERS = ("<", ">", "|", "=")
_DTYPE_STATE_VERSIONS = (3, 4)
_ARRAY_STATE_VERSION = 1
_MAX_DIMENSIONS = 32
_NUMPY_MULTIARRAY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


class _FileDtype:
    """A dtype as the file describes it: its name (`numpy.dtype('f4', False, True)`) and, from the
    pickle's BUILD, its state (byte order, fields, flags...)."""

    def __init__(self, name, align=False, copy=True):  # numpy.dtype's signature; only the name is used
        self.name, self.state = name, None

    def __setstate__(self, state):
        self.state = state


class _FileArray:
    """An array as the file describes it (`_reconstruct(ndarray, ...)`, then BUILD with its state)."""

    def __init__(self):
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _StandIn:
    """A callable the file may name. A pickle's BUILD can set attributes of anything it holds; these
    have none to set (no __dict__) and refuse a state, so a file cannot alter them for the next one."""

    __slots__ = ("_function",)

    def __init__(self, function):
        object.__setattr__(self, "_function", function)

    def __call__(self, *args):
        if self._function is None:
            raise pickle.UnpicklingError("numpy.ndarray called directly")
        return self._function(*args)

    def __setstate__(self, state):
        raise pickle.UnpicklingError("a state given to a numpy function")


_NDARRAY_NAME = _StandIn(None)  # the file's `numpy.ndarray`: a name for `_reconstruct`, not a class to call


def _reconstruct(cls, shape, typecode):
    if cls is not _NDARRAY_NAME:
        raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
    return _FileArray()


def _frombuffer(data, dtype, shape, order):
    """numpy's protocol-5 form of an array: recorded like the older form, built by `_ArrayBuilder`."""
    array = _FileArray()
    array.state = (_ARRAY_STATE_VERSION, shape, dtype, order == "F", data)
    return array


def _latin1_bytes(text, encoding):
    """`_codecs.encode(text, 'latin1')`: how Python 3 writes bytes in pickle protocols 0-2."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode used for something other than latin1 bytes")
    return text.encode("latin1")


def _empty_bytes():
    """`bytes()`: how Python 3 writes b"" in pickle protocols 0-2 (the data of an empty array)."""
    return b""


def _plain_dtype(described):
    """A fresh np.dtype for a dtype the file describes, if it is a plain number type; else an error."""
    if not isinstance(described, _FileDtype) or not isinstance(described.name, str):
        raise pickle.UnpicklingError("an array whose dtype is not a numpy dtype")
    if not _PLAIN_DTYPE_NAME.fullmatch(described.name) and not _OBJECT_DTYPE_NAME.fullmatch(described.name):
        raise pickle.UnpicklingError(f"dtype {described.name!r} is not a plain numeric type")
    fresh = np.dtype(described.name)
    state = described.state
    if (not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in _DTYPE_STATE_VERSIONS
            or state[1] not in _BYTE_ORDERS or state[2:5] != (None, None, None) or state[5:7] != (-1, -1)
            or state[7] != fresh.flags or state[8:] not in ((), (None,))):
        raise pickle.UnpicklingError(f"dtype {described.name!r} with a state numpy never writes: {state!r}")
    return fresh.newbyteorder(state[1]) if state[1] in "<>" else fresh


def _scalar(described, data=None):
    dtype = _plain_dtype(described)
    data = data.encode("latin1") if isinstance(data, str) else data
    if dtype.kind == "O" or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"a {dtype} scalar with {type(data).__name__} data")
    return np.frombuffer(data, dtype)[0]


_STAND_INS = {
    **{(module, "_reconstruct"): _StandIn(_reconstruct) for module in _NUMPY_MULTIARRAY_MODULES},
    **{(module, "scalar"): _StandIn(_scalar) for module in _NUMPY_MULTIARRAY_MODULES},
    **{(module, "_frombuffer"): _StandIn(_frombuffer) for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NDARRAY_NAME,
    ("numpy", "dtype"): _StandIn(_FileDtype),
    ("_codecs", "encode"): _StandIn(_latin1_bytes),
    **{(module, "bytes"): _StandIn(_empty_bytes) for module in ("builtins", "__builtin__")},
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _STAND_INS:
            return _STAND_INS[(module, name)]
        raise pickle.UnpicklingError(
            f"it refers to {module}.{name}, which is not part of a plain container of numpy arrays"
        )


class _ArrayBuilder:
    """Replaces every recorded array in what the unpickler returned by a real one, within a budget: the
    arrays together may not hold more bytes than the file (a pickle can name one bytes object many
    times, and copying it for each would exhaust memory)."""

    def __init__(self, byte_budget):
        self.byte_budget = byte_budget
        self.built = {}  # id -> result, so shared and self-referencing values are built once

    def build(self, value):
        key = id(value)
        if key in self.built:
            return self.built[key]
        if isinstance(value, dict):
            result = self.built[key] = {}
            result.update((self.build(item_key), self.build(item)) for item_key, item in value.items())
        elif isinstance(value, list):
            result = self.built[key] = []
            result.extend(self.build(item) for item in value)
        elif isinstance(value, (tuple, set, frozenset)):
            result = self.built[key] = type(value)(self.build(item) for item in value)
        elif isinstance(value, _FileArray):
            result = self.built[key] = self._array(value.state)
        elif isinstance(value, _FileDtype):
            result = self.built[key] = _plain_dtype(value)
        elif isinstance(value, (str, bytes, bytearray, int, float, complex, type(None), np.generic)):
            result = value
        else:
            raise pickle.UnpicklingError(f"a value of type {type(value).__name__}")
        return result

    def _array(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("an array without a valid state")
        if len(state) == 5 and state[0] != _ARRAY_STATE_VERSION:
            raise pickle.UnpicklingError(f"array state version {state[0]!r}")
        shape, described, fortran_order, data = state[-4:]
        shape = _checked_shape(shape)
        dtype = _plain_dtype(described)
        count = int(np.prod(shape, dtype=object))
        self._spend(count * dtype.itemsize)
        order = "F" if fortran_order else "C"
        if dtype.kind == "O":
            return self._object_array(data, count, shape, order)
        data = data.encode("latin1") if isinstance(data, str) else data
        if not isinstance(data, (bytes, bytearray)) or len(data) != count * dtype.itemsize:
            raise pickle.UnpicklingError(f"a {dtype} array of shape {shape} with {_size_text(data)} of data")
        return np.frombuffer(data, dtype).reshape(shape, order=order).copy(order="K")

    def _object_array(self, items, count, shape, order):
        if not isinstance(items, list) or len(items) != count:
            raise pickle.UnpicklingError(f"an object array of shape {shape} without its {count} items")
        array = np.empty(count, dtype=object)
        for index, item in enumerate(items):
            array[index] = self.build(item)
        return array.reshape(shape, order=order)

    def _spend(self, size):
        self.byte_budget -= size
        if self.byte_budget < 0:
            raise pickle.UnpicklingError("its arrays would hold more data than the file does")


def _checked_shape(shape):
    if (not isinstance(shape, tuple) or len(shape) > _MAX_DIMENSIONS
            or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape)):
        raise pickle.UnpicklingError(f"an array with the shape {shape!r}")
    return shape


def _size_text(data):
    return f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else type(data).__name__


def loads_numpy_only(data, source, encoding="ASCII"):
    """Unpickle `data` admitting only containers, scalars and numpy arrays; `source` names it in errors."""
    try:
        content = _NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
        return _ArrayBuilder(len(data)).build(content)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, RecursionError, OverflowError) as error:
        raise UserInputError(f"{source}: not a readable pickle of numpy arrays ({one_line_reason(error)})") from None


def load_numpy_only(path, encoding="ASCII"):
    try:
        with open_regular(path) as handle:
            data = handle.read()
    except OSError as error:
        raise UserInputError(f"{path}: cannot read ({error.strerror})") from None
    return loads_numpy_only(data, path, encoding=encoding)


def load_npy_dict(path):
    """Read a `reprod_log` file (`np.save` of a dict of arrays) without `allow_pickle=True`."""
    try:
        with open_regular(path, what=".npy file") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = read_header(handle)
            payload = handle.read()
    except OSError as error:
        raise UserInputError(f"{path}: cannot read ({error.strerror})") from None
    except (ValueError, SyntaxError, tokenize.TokenError) as error:  # the header is parsed as Python literals
        raise UserInputError(f"{path}: not a .npy file ({one_line_reason(error)})") from None
    if dtype != np.dtype(object) or shape != ():
        raise UserInputError(f"{path}: expected a saved dict (object scalar), found {dtype} {shape}")
    saved = loads_numpy_only(payload, path, encoding="latin1")
    content = saved.item() if isinstance(saved, np.ndarray) and saved.shape == () else saved
    if not isinstance(content, dict) or not all(
        isinstance(key, str) and isinstance(value, np.ndarray) for key, value in content.items()
    ):
        raise UserInputError(f"{path}: expected a dict of named numpy arrays")
    return content
