"""python -m alignment.layers (make align-layers): where the Paddle port starts to differ, layer by layer.

Prepares the suite's batch and weights, records every layer on the torch side and then on the Paddle
side, each in its own process, and prints for each precision, mode (eval; train with the suite's
injected dropout masks) and direction (forward: outputs; backward: gradients) every layer in the
order it ran with its max abs and max rel difference, the first layer that differs while what reaches
it still agrees, and the layers that differ when fed torch's values. Writes <dtype>/layers_*.
Exits 1 when a layer differs.
"""
import argparse
import os
import sys

from greedyhash_common.errors import exits_cleanly_on_bad_input
from greedyhash_common.hyperparameters import IMAGE_SIZE

from ..suite import DTYPES, PROJECT_ROOT, _split_choice, localize, prepare
from .localize import format_localization


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment.layers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--bit", type=int, default=48)
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="input height and width (224, or 64 for speed)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--data", help="CIFAR-10 folder or archive; default: the built-in synthetic data")
    parser.add_argument("--weights", help="GreedyHash checkpoint (.pth or .pdparams); default: seeded init")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization and dropout masks")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each side")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--paddle-python", default=sys.executable)
    return parser


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    dtypes = _split_choice(args.dtypes, DTYPES, "dtypes")
    args.workdir = os.path.abspath(args.workdir)
    prepare(args)
    localizations, failed = localize(args, dtypes)
    for side, log in failed.items():
        print(f"layer localization failed: {side} side, see {log}")
    for localization in localizations.values():
        print(format_localization(localization), end="\n\n")
    passed = not failed and all(localization.passed for localization in localizations.values())
    print(f"layers {'agree' if passed else 'DIFFER'} ({', '.join(dtypes)}); files in"
          f" {os.path.join(args.workdir, '<dtype>', 'layers_*')}")
    sys.exit(0 if passed else 1)


main()
