"""Make the weight sets of alignment.weight_sets with torch: the seeded initialization, its rescaling
on the suite's batch, the user's checkpoint; each written as a .pth and its conversion to .pdparams
(alignment.prepare_weights decides which need making).
"""
import numpy as np
import torch

from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.layout import GREEDYHASH
from greedyhash_common.state_dicts.paddle_files import write_paddle_state
from torch_impl.model import GreedyHash
from torch_impl.torch_files import write_torch_state
from weights_convert.checkpoints import both_layouts
from weights_convert.convert import torch_to_paddle

from ...paths import images_path, weight_set_files
from ...weight_sets import SEEDED, USER, below_float32
from ..rescaling import rescale
from .weight_sets import RESCALING_IMAGE_SIZE, target_std


def greedyhash_layouts(source):
    """(torch state, paddle state, Layout) of a GreedyHash checkpoint of either framework."""
    torch_state, paddle_state, layout = both_layouts(source)
    if layout.kind != GREEDYHASH:
        raise UserInputError(f"{source}: an AlexNet backbone only; alignment needs full GreedyHash weights")
    return torch_state, paddle_state, layout


def seeded_model(bit, seed):
    torch.manual_seed(seed)
    return GreedyHash(bit)


def rescaled_model(bit, seed, workdir):
    """The seeded model rescaled in float64 on the suite's batch (alignment.weight_sets), kept in float64."""
    model = seeded_model(bit, seed).double()
    rescale(model, np.load(images_path(workdir, RESCALING_IMAGE_SIZE), allow_pickle=False), target_std,
            (torch.nn.Conv2d, torch.nn.Linear))
    return model


def write_both_layouts(source, bit, torch_path, paddle_path):
    """GreedyHash weights of either framework (`source`), checked for `bit`, written in both layouts."""
    torch_state, paddle_state, layout = greedyhash_layouts(source)
    if layout.bit() != bit:
        raise UserInputError(f"{source}: weights for {layout.bit()}-bit codes, the run asks for {bit}")
    write_torch_state(torch_state, torch_path)
    write_paddle_state(paddle_state, paddle_path)


def convert_weight_set(bit, workdir, weight_set):
    """The .pdparams of one weight set, converted from its .pth."""
    torch_file, paddle_file = weight_set_files(workdir, bit, weight_set)
    write_paddle_state(greedyhash_layouts(torch_file)[1], paddle_file)


def make_weight_set(bit, seed, workdir, weight_set, source=None):
    """Write one weight set in both layouts (alignment.paths.weight_set_files); the user set is `source`. A made
    set is converted from the model in memory: its .pth is written once, not written and read back; it is in
    float64, below float32's precision (alignment.weight_sets.below_float32: the rescaled set, made in float64,
    has such values of its own)."""
    torch_file, paddle_file = weight_set_files(workdir, bit, weight_set)
    if weight_set == USER:
        write_both_layouts(source, bit, torch_file, paddle_file)
        return
    model = seeded_model(bit, seed) if weight_set == SEEDED else rescaled_model(bit, seed, workdir)
    torch_state = below_float32({key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}, seed)
    paddle_state, _ = torch_to_paddle(torch_state, torch_file)
    write_torch_state(torch_state, torch_file)
    write_paddle_state(paddle_state, paddle_file)
