"""A checkpoint of either framework in both layouts (torch's reader: imports torch, never paddle)."""
from greedyhash_common.state_dicts.paddle_files import read_paddle_state
from torch_impl.torch_files import read_torch_state

from .convert import paddle_to_torch, torch_to_paddle


def both_layouts(source, layout=None):
    """(torch state, Paddle state, Layout) of `source` (.pdparams: Paddle's, else torch's), converted strictly
    through `layout` (None: GreedyHash's or the AlexNet backbone's, by the keys)."""
    if source.endswith(".pdparams"):
        paddle_state = read_paddle_state(source)
        torch_state, layout = paddle_to_torch(paddle_state, source, layout)
    else:
        torch_state = read_torch_state(source)
        paddle_state, layout = torch_to_paddle(torch_state, source, layout)
    return torch_state, paddle_state, layout
