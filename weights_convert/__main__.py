"""python -m weights_convert torch2paddle SRC.pth DST.pdparams | paddle2torch SRC.pdparams DST.pth [--model NAME]

--model: the model whose key layout is used (models; default greedyhash, which also takes torchvision's
ImageNet AlexNet checkpoint)."""

from greedyhash_common.app.option_checks import check_not_an_input, check_output_file
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.state_dicts.layout import ALEXNET_BACKBONE
from greedyhash_common.state_dicts.paddle_files import read_paddle_state, write_paddle_state
from models import GREEDYHASH, MODELS, layout_named
from torch_impl.torch_files import read_torch_state, write_torch_state

from .convert import paddle_to_torch, torch_to_paddle

# What each direction writes, by the suffix its file must have: a Paddle pickle under a .pth name (or the
# reverse) would be refused, or misread, by whoever loads it next
TARGET_SUFFIX = {"torch2paddle": ".pdparams", "paddle2torch": ".pth"}


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m weights_convert", description=__doc__)
    parser.add_argument("direction", choices=("torch2paddle", "paddle2torch"))
    parser.add_argument("source", help="checkpoint to read (.pth for torch2paddle, .pdparams for paddle2torch)")
    parser.add_argument("target", help="file to write (.pdparams for torch2paddle, .pth for paddle2torch), never "
                                       "the source; written only if the whole conversion succeeds")
    parser.add_argument("--model", default=GREEDYHASH, choices=MODELS, help="the model whose key layout is used")
    return parser


def check_target(args):
    check_output_file(args.target, "target")
    suffix = TARGET_SUFFIX[args.direction]
    if not args.target.endswith(suffix):
        raise UserInputError(f"target {args.target}: {args.direction} writes a {suffix} file; give the target that "
                             "suffix")
    check_not_an_input(args.target, "target", args.source)


def describe(layout, source, target):
    lines = [f"converted {source} -> {target}: {layout.kind}, {len(layout.key_map)} tensors,"
             f" transposed: {', '.join(layout.transposed)}"]
    if layout.kind == ALEXNET_BACKBONE:
        lines.append("AlexNet backbone only: the hash layer (fc_plus) and the classifier (fc) are not in"
                     " this file and keep the model's own initialization when it is loaded")
    if layout.dropped_torch_keys and layout.kind == ALEXNET_BACKBONE:
        lines.append(f"dropped the ImageNet 1000-class layer: {', '.join(layout.dropped_torch_keys)}")
    elif layout.dropped_torch_keys:
        lines.append(f"no Paddle counterpart ({len(layout.dropped_torch_keys)} keys): dropped from a torch file, "
                     f"written as {', '.join(sorted({str(value) for value in layout.torch_defaults.values()}))}"
                     f" into one: {', '.join(layout.dropped_torch_keys[:3])}, ...")
    return "\n".join(lines)


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_target(args)
    if args.direction == "torch2paddle":
        state, layout = torch_to_paddle(read_torch_state(args.source), args.source, layout_named(args.model))
        write_paddle_state(state, args.target)
    else:
        state, layout = paddle_to_torch(read_paddle_state(args.source), args.source, layout_named(args.model))
        write_torch_state(state, args.target)
    print(describe(layout, args.source, args.target))


if __name__ == "__main__":
    main()
