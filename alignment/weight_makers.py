"""Write the weight sets both sides of a run start from: each a .pth and its conversion to .pdparams.

  python -m alignment.prepare_weights --bit 48 --seed 0 --workdir logs [--weight-sets seeded,rescaled]
                                      [--weights FILE]

The sets are those of alignment.weight_sets: the seeded initialization, its rescaling to a trained
network's value ranges (on the suite's batch at the reference size, inputs/), and the user's checkpoint
(--weights). Runs with torch only (the converter needs no paddle), like the torch side of the suite.
"""
import argparse

import numpy as np
import torch

from greedyhash_common.infra.errors import UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.state_dicts.layout import GREEDYHASH
from greedyhash_common.state_dicts.paddle_files import read_paddle_state, write_paddle_state
from torch_impl import runtime
from torch_impl.model import GreedyHash
from torch_impl.torch_files import read_torch_state, write_torch_state
from torch_impl.weights import save_weights
from weights_convert.convert import paddle_to_torch, torch_to_paddle

from .cases import REFERENCE_SIZE
from .paths import images_path, weights_path
from .weight_sets import DEFAULT_WEIGHT_SETS, RESCALED, SEEDED, USER, target_std


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment.prepare_weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization when no --weights")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--weight-sets", default=",".join(DEFAULT_WEIGHT_SETS))
    parser.add_argument("--weights", help="a GreedyHash checkpoint (.pth or .pdparams): the user set")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def both_layouts(source):
    """(torch state, paddle state) of a GreedyHash checkpoint of either framework."""
    if source.endswith(".pdparams"):
        paddle_state = read_paddle_state(source)
        torch_state, layout = paddle_to_torch(paddle_state, source)
    else:
        torch_state = read_torch_state(source)
        paddle_state, layout = torch_to_paddle(torch_state, source)
    if layout.kind != GREEDYHASH:
        raise UserInputError(f"{source}: an AlexNet backbone only; alignment needs full GreedyHash weights")
    return torch_state, paddle_state, layout


def _output_std(model, module, images):
    seen = []
    handle = module.register_forward_hook(lambda _, __, output: seen.append(output.std().item()))
    try:
        model(images)
    finally:
        handle.remove()
    return seen[0]


def rescale(model, images):
    """Rescale `model` in place (alignment.weight_sets) on `images` (numpy NCHW); return {layer: factor}."""
    model.eval()
    batch = torch.from_numpy(np.ascontiguousarray(images)).to(next(model.parameters()).dtype)
    factors = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                factors[name] = target_std(name) / _output_std(model, module, batch)
                module.weight.mul_(factors[name])
                if module.bias is not None:
                    module.bias.mul_(factors[name])
    return factors


def seeded_model(bit, seed):
    torch.manual_seed(seed)
    return GreedyHash(bit)


def rescaled_model(bit, seed, workdir):
    """The seeded model rescaled in float64 on the suite's batch (alignment.weight_sets), stored in float32."""
    model = seeded_model(bit, seed).double()
    rescale(model, np.load(images_path(workdir, REFERENCE_SIZE), allow_pickle=False))
    return model.float()


def write_both_layouts(source, bit, torch_path, paddle_path):
    """GreedyHash weights of either framework (`source`), checked for `bit`, written in both layouts."""
    torch_state, paddle_state, layout = both_layouts(source)
    if layout.bit() != bit:
        raise UserInputError(f"{source}: weights for {layout.bit()}-bit codes, the run asks for {bit}")
    write_torch_state(torch_state, torch_path)
    write_paddle_state(paddle_state, paddle_path)


def prepare_weights(bit, seed, workdir, weight_sets=DEFAULT_WEIGHT_SETS, source=None):
    """Write every weight set of `weight_sets` in both layouts; the user set is `source`."""
    for weight_set in weight_sets:
        torch_file, paddle_file = (weights_path(workdir, bit, weight_set, suffix) for suffix in (".pth", ".pdparams"))
        if weight_set != USER:
            save_weights(seeded_model(bit, seed) if weight_set == SEEDED else rescaled_model(bit, seed, workdir),
                         torch_file)
        write_both_layouts(source if weight_set == USER else torch_file, bit, torch_file, paddle_file)


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    runtime.configure(args.threads)
    weight_sets = args.weight_sets.split(",")
    unknown = set(weight_sets) - {SEEDED, RESCALED, USER}
    if unknown or (USER in weight_sets) != bool(args.weights):
        raise UserInputError(f"--weight-sets {args.weight_sets}: choose from {SEEDED}, {RESCALED}, and {USER}"
                             " exactly when --weights is given")
    prepare_weights(args.bit, args.seed, args.workdir, weight_sets, args.weights)


if __name__ == "__main__":
    main()
