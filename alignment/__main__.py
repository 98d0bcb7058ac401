"""python -m alignment: the suite's command line (its options and what it does: alignment.suite.USAGE). It
parses, runs the suite through alignment.suite's public API, prints the verdicts and exits 1 when a check
fails, 2 on bad input."""
import sys

from greedyhash_common.infra.errors import exits_cleanly_on_bad_input

from .api import Alignment
from .suite import get_args_parser, resolved_options, run, with_user_weights


@exits_cleanly_on_bad_input
def main(argv=None):
    args, pair = resolved_options(get_args_parser().parse_args(argv))
    args = with_user_weights(args)
    alignment = Alignment(args.workdir, *run(args, pair))
    print(alignment)
    sys.exit(0 if alignment.passed else 1)


if __name__ == "__main__":
    main()
