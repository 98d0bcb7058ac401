"""python -m alignment.layers (make align-layers): where the Paddle port starts to differ, layer by layer.

Prepares the suite's batch and weights, records every layer on the torch side and then on the Paddle
side, each in its own process, and prints for each precision, mode (eval; train with the suite's
injected dropout masks) and direction (forward: outputs; backward: gradients) every layer in the
order it ran with its max abs and max rel difference, the first layer that differs while what reaches
it still agrees, and the layers that differ when fed torch's values. Writes <dtype>/<case>/layers_*.
Exits 1 when a layer differs.
"""
import argparse
import os
import sys

from greedyhash_common.infra.errors import OneLineArgumentParser, exits_cleanly_on_bad_input
from greedyhash_common.infra.workdir_lock import holding_workdir

from ..cases import Case, run_cases_of
from ..steps import step_cases
from ..suite import DTYPES, add_run_options, localize, prepare, resolved_options, split_choice, with_user_weights
from .localize import format_localization


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.layers", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", help="comma-separated cases (such as rescaled-256px), or all; default: the"
                        " first case of the forward step (the first weight set at the first size)")
    return add_run_options(parser)


def chosen_cases(args, pair):
    cases = step_cases("forward", run_cases_of(args, pair), None, pair)
    if not args.cases:
        return cases[:1]
    if args.cases == "all":
        return cases
    return [Case.from_label(label) for label in split_choice(args.cases, [case.label for case in cases], "cases")]


@exits_cleanly_on_bad_input
def main(argv=None):
    args, pair = resolved_options(get_args_parser().parse_args(argv))
    args = with_user_weights(args)
    dtypes = split_choice(args.dtypes, DTYPES, "dtypes")
    cases = chosen_cases(args, pair)
    args.workdir = os.path.abspath(args.workdir)
    with holding_workdir(args.workdir):
        prepare(args, pair)
        localizations, failed = localize(args, pair, dict.fromkeys(cases, dtypes))
        for side, log in failed.items():
            print(f"layer localization failed: {side} side, see {log}")
        for localization in localizations.values():
            print(format_localization(localization), end="\n\n")
        passed = not failed and all(localization.passed for localization in localizations.values())
        print(f"layers {'agree' if passed else 'DIFFER'} ({', '.join(dtypes)};"
              f" {', '.join(case.label for case in cases)});"
              f" files in {os.path.join(args.workdir, '<dtype>', '<case>', 'layers_*')}")
        sys.exit(0 if passed else 1)


main()
