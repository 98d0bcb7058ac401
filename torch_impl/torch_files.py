"""Reading and writing torch checkpoints as name -> numpy array dicts (imports torch, never paddle)."""
import collections
import pickle
import sys
import warnings
import zipfile

import torch

from greedyhash_common.infra.atomic import atomic_path
from greedyhash_common.infra.bounded_read import check_regular
from greedyhash_common.infra.errors import UserInputError, one_line_reason

_WRAPPER_KEYS = ("state_dict", "model")  # where training scripts commonly nest the weights
# torch's weights_only refusal explains itself over several lines; the line that says what was refused:
_WEIGHTS_ONLY_REASON_MARK = "WeightsUnpickler error:"
_PICKLE_PROTOCOL_OPCODE = pickle.PROTO  # what a Paddle file (a bare pickle) starts with


def load_torch_file(path):
    """torch.load(weights_only=True), every failure one line: a missing, corrupt or foreign file."""
    check_regular(path, "torch checkpoint")
    if _is_paddle_pickle(path):
        raise UserInputError(f"{path}: a Paddle file (a pickle of numpy arrays), not a torch checkpoint; convert "
                             f"it with python -m weights_convert paddle2torch {path} weights.pth")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing a file
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise UserInputError(f"{path}: not a readable torch checkpoint ({_torch_reason(error)})") from None


def _is_paddle_pickle(path):
    """torch.save writes zip archives; a file that starts as a pickle of protocol 4 is what paddle.save and
    this project's Paddle side write (torch's legacy format starts with protocol 2)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(2)
    except OSError:
        return False  # torch.load says why
    return start == _PICKLE_PROTOCOL_OPCODE + bytes([4]) and not zipfile.is_zipfile(path)


def _torch_reason(error):
    return one_line_reason(error, str(error).split(_WEIGHTS_ONLY_REASON_MARK, 1)[-1])


def read_torch_state(path):
    content = load_torch_file(path)
    for key in _WRAPPER_KEYS:
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
    if not isinstance(content, dict) or not content:
        raise UserInputError(f"{path}: expected a dict of named tensors (a state dict)")
    not_tensors = [key for key, value in content.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise UserInputError(f"{path}: entries that are not tensors: {', '.join(map(str, not_tensors[:5]))}")
    not_names = [key for key in content if not isinstance(key, str)]
    if not_names:
        raise UserInputError(f"{path}: keys that are not parameter names: {', '.join(map(repr, not_names[:5]))}"
                             " (a state dict maps names to tensors)")
    widened = [key for key, value in content.items() if value.dtype == torch.bfloat16]
    if widened:
        print(f"note: {path}: bfloat16 tensors read as float32 (exactly): {', '.join(widened[:5])}"
              f"{', ...' if len(widened) > 5 else ''}", file=sys.stderr)
    return {key: _as_array(value, key, path) for key, value in content.items()}


def _as_array(tensor, key, path):
    """A tensor's numpy array. bfloat16 (a mixed-precision run's weights) is read as float32, which holds
    every bfloat16 value exactly; a sparse, quantized or other tensor numpy cannot hold is refused by name."""
    if tensor.layout != torch.strided:
        raise UserInputError(f"{path}: {key} is a {tensor.layout} tensor; save dense weights (tensor.to_dense())")
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    try:
        return tensor.detach().cpu().numpy()
    except (TypeError, RuntimeError) as error:
        raise UserInputError(f"{path}: {key} of dtype {tensor.dtype} has no numpy equivalent "
                             f"({one_line_reason(error)})") from None


def write_torch_state(state, path):
    tensors = collections.OrderedDict((key, torch.from_numpy(array.copy())) for key, array in state.items())
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
