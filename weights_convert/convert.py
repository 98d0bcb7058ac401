"""Framework-free conversion of state dicts (name -> numpy array) between the torch and Paddle layouts.

Strict in both directions: every source key must be expected, every expected key present, every
shape right (greedyhash_common.state_dicts.layout); otherwise nothing is converted and every problem is
listed at once.
"""
import numpy as np

from greedyhash_common.state_dicts.layout import PADDLE_NAME_TABLE_KEY, check_state, detect_layout


def _without_name_table(state):
    return {key: value for key, value in state.items() if key != PADDLE_NAME_TABLE_KEY}


def converted_array(array, transpose):
    return np.ascontiguousarray(array.T) if transpose else array


def torch_to_paddle(torch_state, source="torch checkpoint", layout=None):
    """Return (paddle_state, layout); `layout` None: GreedyHash's or the AlexNet backbone's, by the keys."""
    layout = layout or detect_layout(torch_state, "torch")
    check_state(torch_state, layout.torch_shapes, source)
    paddle_state = {paddle_key: converted_array(torch_state[torch_key], torch_key in layout.transposed)
                    for torch_key, paddle_key in layout.key_map.items()}
    return paddle_state, layout


def paddle_to_torch(paddle_state, source="Paddle checkpoint", layout=None):
    """Return (torch_state, layout); `layout` None: GreedyHash's or the AlexNet backbone's, by the keys.
    Keys torch needs and Paddle does not hold get the layout's default values."""
    paddle_state = _without_name_table(paddle_state)
    layout = layout or detect_layout(paddle_state, "paddle")
    check_state(paddle_state, layout.paddle_shapes(), source)
    torch_state = {torch_key: converted_array(paddle_state[paddle_key], torch_key in layout.transposed)
                   for torch_key, paddle_key in layout.key_map.items()}
    torch_state.update({key: value.copy() for key, value in layout.torch_defaults.items()})
    return torch_state, layout
