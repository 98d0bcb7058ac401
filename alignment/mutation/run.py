"""python -m alignment.mutation: how much does a pass prove? The suite scores itself against generated
port defects, for any pair the suite runs.

  python -m alignment.mutation [--model PAIR | --torch M:F --paddle M:F] [--max N] [--sample-seed 0] [--jobs 2]
                              [the suite's run options]

Runs the unmutated suite's float64 steps (forward, loss, backward, optim, train) in the run's cases
(by default make align's), then every mutant of the Paddle port (operators.py beside this file), or a
seeded sample of --max of them, through the same steps, cases, inputs, checker and tolerances (worker.py),
in --jobs Paddle processes. Reports the mutation score (killed / (killed + survived)) per operator
and per layer, every survivor with what it changed and why no check saw it, the mutants that are
equivalent to the port (not counted) and those with which the port does not run at all (not
counted). Exits 1 if the score is below the committed reference's (logs/reference/mutants/ for GreedyHash,
logs/reference/mutants-<pair>/ for another pair) for the same settings, or if the unmutated port does not
pass. The time the run took is in its report (mutation.md, mutation.json).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.child_processes import ending_together, start_child
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.infra.workdir_lock import holding_workdir
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command

from alignment.suite import (SIDE_PROCESS, add_run_options, prepare, read_coverage, resolved_options, run_sides,
                             show_progress, split_choice, with_user_weights)
from .catalog import NAMES
from .files import DTYPE, MUTANT_STEPS, all_mutants_path, result_path, selected_mutants_path
from .score import CONTROL, compare_with_reference, reference_summary, summarize, write_outputs

DEFAULT_JOBS = 2
MUTANTS_FOLDER = "mutants"  # in the suite's folder of the pair: logs/mutants, logs/<pair>/mutants


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.mutation", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=int, help="check a seeded sample of this many mutants (default: all)")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--operators", help="comma-separated operator names: only their mutants (default: all)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="Paddle processes running mutants")
    parser.add_argument("--steps", default=",".join(MUTANT_STEPS),
                        help="the steps a mutant is checked in (default: all five); fewer only for a port that fails"
                             " one of them unmutated, and the score says so in its settings")
    parser.add_argument("--reference", help="the committed score this run must not fall below (same settings);"
                        " default: the pair's (logs/reference/); none: no comparison")
    add_run_options(parser)
    parser.set_defaults(dtypes=DTYPE)
    return parser


def checked_mutant_options(args):
    """(args, pair), every option checked before any work; the work folder by default the suite's, with
    mutants/ in it."""
    given_workdir = args.workdir
    args, pair = resolved_options(args)
    args.workdir = given_workdir or os.path.join(args.workdir, MUTANTS_FOLDER)
    chosen_operators(args.operators)
    split_choice(args.steps, MUTANT_STEPS, "steps")
    for name in ("max", "jobs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserInputError(f"--{name} must be at least 1, got {value}")
    if args.dtypes != DTYPE:
        raise UserInputError(f"mutants are checked in {DTYPE} only, not in {args.dtypes}")
    args.reference = args.reference or os.path.join(PROJECT_ROOT, reference_summary(pair.NAME))
    return args, pair


def paddle_command(args, action):
    return module_command(args.paddle_python, "alignment.mutation.worker", action, "--model", args.model,
                          "--bit", args.bit, "--workdir", args.workdir, "--threads", args.threads,
                          "--mask-seed", args.seed, "--steps", args.steps,
                          "--weight-sets", args.weight_sets, "--sizes", args.sizes, "--bulk-size", args.bulk_size,
                          *(["--data", args.data] if args.data else []))


def run_paddle(args, action, jobs=1):
    """Run `jobs` Paddle processes of `action`, showing their progress; raise if one fails."""
    running = {}
    with ending_together() as children:
        for worker in range(jobs):
            log = os.path.join(args.workdir, f"mutants_{action}_{worker}.log")
            with open(log, "w", encoding="utf-8") as handle:
                children.append(start_child(paddle_command(args, action), "--paddle-python", cwd=PROJECT_ROOT,
                                            env=child_environment(), stdout=handle, stderr=subprocess.STDOUT))
            running[log] = children[-1]
        show_progress(running)
    failed = [log for log, process in running.items() if process.wait()]
    if failed:
        raise UserInputError(f"the Paddle mutant process failed, see {failed[0]}")


def chosen_operators(operators):
    """The operator names of --operators (None: every operator), each checked against the catalog."""
    if operators is None:
        return NAMES
    unknown = [name for name in operators.split(",") if name not in NAMES]
    if unknown:
        raise UserInputError(f"unknown operators {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    return tuple(operators.split(","))


def select(mutants, operators, maximum, seed):
    """The viable mutants of `operators`, or a seeded sample of `maximum` of them in listing order; the
    control first."""
    viable = [mutant for mutant in mutants if not mutant["not_viable"] and mutant["operator"] in operators]
    if maximum is not None and maximum < len(viable):
        chosen = set(random.Random(seed).sample(range(len(viable)), maximum))
        viable = [mutant for index, mutant in enumerate(viable) if index in chosen]
    return [CONTROL, *viable]


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# The settings a score holds, each with the option that sets it: a committed score is rerun with its own
OPTION_OF_SETTING = {"model": "--model", "steps": "--steps", "bit": "--bit", "batch_size": "--batch-size",
                     "seed": "--seed", "weight_sets": "--weight-sets", "sizes": "--sizes", "bulk_size": "--bulk-size",
                     "data": "--data", "weights": "--weights", "operators": "--operators", "max": "--max",
                     "sample_seed": "--sample-seed"}


def settings_of(args):
    return {name: getattr(args, name) for name in OPTION_OF_SETTING}


def options_of(settings):
    """The command-line options of a run with these settings."""
    return [word for name, value in settings.items() if value is not None
            for word in (OPTION_OF_SETTING[name], str(value))]


def listed_and_selected(args):
    """Every mutant (the Paddle side lists them) and the ones this run checks, the control first."""
    run_paddle(args, "list")
    mutants = read_json(all_mutants_path(args.workdir))
    selected = select(mutants, chosen_operators(args.operators), args.max, args.sample_seed)
    write_text(selected_mutants_path(args.workdir), json.dumps(selected, indent=1) + "\n")
    return mutants, selected


def unmutated_run(args, pair):
    """The suite's float64 steps on both sides, unmutated: the torch values every mutant is checked against
    (so every array of every step is kept on disk). Returns the checks' results; exits 1 if the port fails
    one."""
    print(f"the unmutated suite's {DTYPE} steps, both sides ({args.steps})", flush=True)
    args.keep_arrays = True
    results = run_sides(args, pair, args.steps.split(","), [DTYPE])
    sides_failed = {key.note for result in results for key in result.keys if key.name == SIDE_PROCESS}
    if sides_failed:
        raise UserInputError(f"the unmutated suite's side failed: {'; '.join(sides_failed)}")
    failures = [f"{result.step} {result.case.label}" for result in results if not result.passed]
    if failures:
        print(f"the unmutated port fails {', '.join(failures)}: fix the port first (make align), a mutation"
              " score means nothing for a port that does not pass", file=sys.stderr)
        sys.exit(1)
    return results


def checked_mutants(args, selected):
    """Each selected mutant's outcome, from `args.jobs` Paddle processes."""
    shutil.rmtree(os.path.dirname(result_path(args.workdir, 0)), ignore_errors=True)  # no earlier run's outcome
    print(f"checking {len(selected) - 1} mutants and the control in {args.jobs} Paddle processes", flush=True)
    run_paddle(args, "run", args.jobs)
    return [read_json(result_path(args.workdir, index)) for index in range(len(selected))]


def run(argv):
    """(summary, a message if the score is below the committed one, else None) of the run `argv` describes."""
    started = time.perf_counter()
    args, pair = checked_mutant_options(get_args_parser().parse_args(argv))
    args = with_user_weights(args)
    args.workdir = os.path.abspath(args.workdir)
    with holding_workdir(args.workdir):
        prepare(args, pair)
        mutants, selected = listed_and_selected(args)
        results = unmutated_run(args, pair)
        outcomes = checked_mutants(args, selected)
        summary = summarize(outcomes, mutants, read_coverage(args.workdir, results), settings_of(args),
                            time.perf_counter() - started)
        print(write_outputs(args.workdir, summary))
        return summary, compare_with_reference(summary, args.reference)


@exits_cleanly_on_bad_input
def main(argv=None):
    summary, below = run(argv)
    if below:
        print(below, file=sys.stderr)
    sys.exit(1 if below or summary["control_failed"] else 0)
