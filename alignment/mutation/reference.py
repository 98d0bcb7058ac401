"""Rerun a committed mutation score with the settings it records and replace it with the new run's:
logs/reference/mutants/ (GreedyHash's, every option at its default) or logs/reference/mutants-<name>/: a
pair's seeded sample that CI's gate reruns (<name> the pair's), or a run kept for its figures (<name> the
pair's and what its settings change: torch_mobilenet_v2-rescaled).

  python -m alignment.mutation.reference [--score resnet18-torch-bn] [--workdir logs/mutants-reference-run]

(`make align-mutants-reference MODEL=<name>`). Only the run's two small files are committed.
"""
import argparse
import os
import shutil

from greedyhash_common.infra.atomic import replace_folder
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.project import PROJECT_ROOT

from ..pairs import DEFAULT_PAIR
from .files import REPORT_MD, SUMMARY_JSON
from .run import options_of, run
from .score import NO_REFERENCE, read_summary, reference_summary


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.mutation.reference", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--score", default=DEFAULT_PAIR, help="which committed score: the folder's name after"
                        " mutants-, or the default pair's name for mutants/")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs", "mutants-reference-run"))
    parser.add_argument("--jobs", default="2", help="Paddle processes running mutants")
    return parser


def committed_settings(name):
    """The settings of the committed score `name`, a folder's name (never a path: its folder is replaced)."""
    if not name or os.path.basename(name) != name or name.startswith("."):
        raise UserInputError(f"--score {name}: give a committed score's name, such as resnet18-torch-bn")
    path = os.path.join(PROJECT_ROOT, reference_summary(name))
    if not os.path.isfile(path):
        committed = sorted(name for name in os.listdir(os.path.dirname(os.path.dirname(path)))
                           if name.startswith("mutants"))
        raise UserInputError(f"no committed mutation score {name} ({path}); committed: {', '.join(committed)}")
    return read_summary(path)["settings"]


def replace_committed(name, workdir):
    """The committed folder replaced whole by the run's two files (staged beside it, then renamed)."""
    folder = os.path.dirname(os.path.join(PROJECT_ROOT, reference_summary(name)))
    def fill(staging):
        for file in (SUMMARY_JSON, REPORT_MD):
            shutil.copyfile(os.path.join(workdir, file), os.path.join(staging, file))

    replace_folder(folder, fill)
    return folder


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    settings = committed_settings(args.score)
    summary, _ = run([*options_of(settings), "--workdir", args.workdir, "--reference", NO_REFERENCE,
                      "--jobs", args.jobs])
    if summary["control_failed"]:
        raise UserInputError(f"the unmutated port failed its own checks; the committed {args.score} is kept, see {args.workdir}")
    print(f"committed: {replace_committed(args.score, args.workdir)}")


if __name__ == "__main__":
    main()
