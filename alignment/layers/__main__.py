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
from greedyhash_common.option_checks import check_alignment_options

from ..suite import DTYPES, add_run_options, localize, prepare, split_choice
from .localize import format_localization


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment.layers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_run_options(parser)


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_alignment_options(args)
    dtypes = split_choice(args.dtypes, DTYPES, "dtypes")
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
