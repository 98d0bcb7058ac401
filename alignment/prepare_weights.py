"""Write the weights both sides of a run start from: a .pth and its conversion to .pdparams.

  python -m alignment.prepare_weights --bit 48 --seed 0 --workdir logs [--weights FILE]

Without --weights the torch model's own seeded initialization is used. Runs with torch only (the
converter needs no paddle), like the torch side of the suite.
"""
import argparse

import torch

from greedyhash_common.errors import UserInputError, exits_cleanly_on_bad_input
from torch_impl import runtime
from torch_impl.model import GreedyHash
from torch_impl.weights import save_weights
from weights_convert.convert import GREEDYHASH, paddle_to_torch, torch_to_paddle
from weights_convert.paddle_files import read_paddle_state, write_paddle_state
from weights_convert.torch_files import read_torch_state, write_torch_state

from .paths import weights_path


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment.prepare_weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization when no --weights")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--weights", help="a GreedyHash checkpoint (.pth or .pdparams) to start from")
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
        raise UserInputError(f"{source}: an AlexNet backbone only; the suite needs full GreedyHash weights")
    return torch_state, paddle_state, layout


def prepare_weights(bit, seed, workdir, source=None):
    torch_file = weights_path(workdir, bit, ".pth")
    if source is None:
        torch.manual_seed(seed)
        save_weights(GreedyHash(bit), torch_file)
        source = torch_file
    torch_state, paddle_state, layout = both_layouts(source)
    if layout.bit() != bit:
        raise UserInputError(f"{source}: weights for {layout.bit()}-bit codes, the run asks for {bit}")
    write_torch_state(torch_state, torch_file)
    write_paddle_state(paddle_state, weights_path(workdir, bit, ".pdparams"))


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    runtime.configure(args.threads)
    prepare_weights(args.bit, args.seed, args.workdir, args.weights)


if __name__ == "__main__":
    main()
