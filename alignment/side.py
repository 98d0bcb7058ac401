"""One framework's side of the alignment suite, in its own process.

  python -m alignment.side torch|paddle --bit 48 --workdir logs [--steps forward,loss,backward]
                                        [--dtypes float32,float64] [--weight-sets seeded,rescaled]
                                        [--sizes 224,222] [--threads 1]

Runs every step in every case of the run (alignment.cases) and, on the reference side, records what
the checked inputs exercised in each layer (alignment.coverage). Only the chosen framework is imported:
the torch process never loads paddle and vice versa, so the two sides may live in separate
environments (pass each side's interpreter to `python -m alignment`).
"""
import argparse
import json
import time

import numpy as np

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import UserInputError, exits_cleanly_on_bad_input

from . import coverage
from .cases import SIZE, add_case_options, run_cases_of
from .paths import coverage_path, env_path, images_path, labels_path, side_values_path, split_path, weights_path
from .reprod_format import save_values
from .sides import REFERENCE, configured_side
from .steps import STEPS, StepContext, runs_in, step_cases
from .weight_sets import train_learning_rate


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment.side", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("torch", "paddle"))
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--workdir", required=True, help="holds inputs/ (batch, weights) and receives the logs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mask-seed", type=int, default=0)
    parser.add_argument("--data", help="CIFAR-10 folder or archive; default: the built-in data")
    return add_case_options(parser)


def step_context(side, args, step, case, dtype):
    images = np.load(images_path(args.workdir, case.size), allow_pickle=False) if SIZE in STEPS[step].USES else None
    weights = weights_path(args.workdir, args.bit, case.weights, side.WEIGHTS_SUFFIX) if case.weights else None
    return StepContext(args.bit, dtype, weights, images, np.load(labels_path(args.workdir), allow_pickle=False),
                       args.mask_seed, args.data, split_path(args.workdir), case.size,
                       train_learning_rate(case.weights), args.threads)


def run_steps(side, args):
    run_cases = run_cases_of(args)
    covered = set()
    for dtype in args.dtypes.split(","):
        for step in (step for step in args.steps.split(",") if runs_in(step, dtype)):
            for case in step_cases(step, run_cases, dtype):
                started = time.perf_counter()
                context = step_context(side, args, step, case, dtype)
                save_values(STEPS[step].run(side, context), side_values_path(args.workdir, dtype, case, step, side.NAME))
                print(f"{side.NAME} {step} {case.label} {dtype}: {time.perf_counter() - started:.1f} s", flush=True)
                if side.NAME == REFERENCE and step == "forward" and case not in covered:
                    covered.add(case)
                    write_text(coverage_path(args.workdir, case),
                               json.dumps(coverage.record(side, context), indent=1) + "\n")
        write_text(env_path(args.workdir, dtype, side.NAME), json.dumps(side.describe(args.threads, dtype), indent=2)
                   + "\n")


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    side = configured_side(args.framework, args.threads)
    unknown = [step for step in args.steps.split(",") if step not in STEPS]
    if unknown:
        raise UserInputError(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    run_steps(side, args)


if __name__ == "__main__":
    main()
