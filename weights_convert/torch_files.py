"""Reading and writing torch checkpoints as name -> numpy array dicts (imports torch, never paddle)."""
import collections

import torch

from greedyhash_common.atomic import atomic_path
from greedyhash_common.errors import UserInputError

_WRAPPER_KEYS = ("state_dict", "model")  # where training scripts commonly nest the weights


def read_torch_state(path):
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise UserInputError(f"{path}: not a readable torch checkpoint ({type(error).__name__}: {error})") from None
    for key in _WRAPPER_KEYS:
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
    if not isinstance(content, dict) or not content:
        raise UserInputError(f"{path}: expected a dict of named tensors (a state dict)")
    not_tensors = [key for key, value in content.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise UserInputError(f"{path}: entries that are not tensors: {', '.join(map(str, not_tensors[:5]))}")
    return {key: value.detach().cpu().numpy() for key, value in content.items()}


def write_torch_state(state, path):
    tensors = collections.OrderedDict((key, torch.from_numpy(array.copy())) for key, array in state.items())
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
