"""One framework's side of the alignment suite, in its own process.

  python -m alignment.worker torch|paddle --bit 48 --workdir logs --values-fd FD [--steps forward,loss,backward]
                                        [--dtypes float32,float64] [--weight-sets seeded,rescaled]
                                        [--sizes 224,222] [--threads 1]

Runs every step in every case of the run (alignment.cases), sends each step's values to the suite
through the pipe --values-fd names as soon as they are computed (alignment.streamed_values), and, on
the reference side, records what the checked inputs exercised in each layer (alignment.coverage).
Only the chosen framework is imported:
the torch process never loads paddle and vice versa, so the two sides may live in separate
environments (pass each side's interpreter to `python -m alignment`).
"""
import argparse
import json
import os
import time

import numpy as np

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.content_cache import file_digest, is_fresh, key_of, source_digest, stamped_key, write_stamp
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.project import PROJECT_ROOT

from . import coverage
from .cases import add_case_options, run_cases_of
from .paths import (coverage_path, coverage_stamp_path, env_path, images_path, labels_path, split_path,
                    weights_path, weights_stamp_path)
from .pairs import pair_named
from .sides import REFERENCE, configured_side, reusing_builds
from .sides.allocator import free_step_garbage, in_a_side_process
from .steps import StepContext, runs_in, step_cases, step_module, steps_of
from .streamed_values import write_step

# What a case's coverage follows from in this project's code (over-inclusive: the suite and the reference)
COVERAGE_CODE = ("alignment", "torch_impl", "greedyhash_common")


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.worker", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("torch", "paddle"))
    parser.add_argument("--steps", help="comma-separated; default: every step of the pair")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--workdir", required=True, help="holds inputs/ (batch, weights) and receives the logs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mask-seed", type=int, default=0)
    parser.add_argument("--data", help="CIFAR-10 folder or archive; default: the built-in data")
    parser.add_argument("--model", required=True, help="the model pair (alignment.pairs.pair_named)")
    parser.add_argument("--values-fd", type=int, required=True,
                        help="the pipe the step values are sent through (alignment.streamed_values)")
    return add_case_options(parser)


def step_context(side, args, pair, case, dtype):
    # the batch at the case's size: the bulk steps' too (a generic pair's train step reads it)
    images = np.load(images_path(args.workdir, case.size), allow_pickle=False) if case.size else None
    weights = weights_path(args.workdir, args.bit, case.weights, side.WEIGHTS_SUFFIX) if case.weights else None
    return StepContext(args.bit, dtype, weights, images, np.load(labels_path(args.workdir), allow_pickle=False),
                       args.mask_seed, args.data, split_path(args.workdir), case.size,
                       pair.train_learning_rate(case.weights), args.threads, pair=pair)


def coverage_key(side, args, case, dtype):
    """The content key of a case's coverage (greedyhash_common.infra.content_cache): its weights (by the key
    they were made from), its batch, the dropout masks, the precision, the code and the framework; None
    when the weights are not the files their stamp describes."""
    # the reference's coverage: its .pth (the .pdparams is converted from it)
    weights = stamped_key(weights_stamp_path(args.workdir, args.bit, case.weights),
                          [weights_path(args.workdir, args.bit, case.weights, ".pth")])
    if weights is None:
        return None
    return key_of({"weights": weights, "images": file_digest(images_path(args.workdir, case.size)),
                   "labels": file_digest(labels_path(args.workdir)), "mask_seed": args.mask_seed, "dtype": dtype,
                   "code": source_digest(PROJECT_ROOT, COVERAGE_CODE), "framework": side.describe(args.threads, dtype)})


def write_coverage(side, args, case, context):
    """Record what the reference's layers saw in `case`, unless recorded before from the same content."""
    path, stamp = coverage_path(args.workdir, case), coverage_stamp_path(args.workdir, case)
    key = coverage_key(side, args, case, context.dtype)
    if key is not None and is_fresh(stamp, key, [path]):
        return
    write_text(path, json.dumps(coverage.record(side, context), indent=1) + "\n")
    if key is not None:
        write_stamp(stamp, key, [path])


def step_runs(args, pair):
    """(dtype, step, case) of every step run, in the order both sides run them and the suite checks them."""
    run_cases = run_cases_of(args, pair)
    for dtype in args.dtypes.split(","):
        for step in (step for step in args.steps.split(",") if runs_in(step, dtype, pair)):
            for case in step_cases(step, run_cases, dtype, pair):
                yield dtype, step, case


def run_steps(side, args, pair):
    """Yield (dtype, step, case, values) of every step run, as each is computed."""
    for dtype in args.dtypes.split(","):
        write_text(env_path(args.workdir, dtype, side.NAME), json.dumps(side.describe(args.threads, dtype), indent=2)
                   + "\n")
    covered = set()
    for dtype, step, case in step_runs(args, pair):
        started = time.perf_counter()
        context = step_context(side, args, pair, case, dtype)
        values = step_module(step, pair).run(side, context)
        print(f"{side.NAME} {step} {case.label} {dtype}: {time.perf_counter() - started:.1f} s", flush=True)
        if side.NAME == REFERENCE and step == "forward" and case not in covered:
            covered.add(case)
            write_coverage(side, args, case, context)
        yield dtype, step, case, values


def send_steps(side, args, pair, stream):
    """Run every step and send its values through `stream` (alignment.streamed_values)."""
    for dtype, step, case, values in run_steps(side, args, pair):
        write_step(stream, {"dtype": dtype, "step": step, "case": case.label}, values)
        values.clear()  # sent: the arrays go now (run_steps holds the dict until the next step's replaces it)
        free_step_garbage()


@exits_cleanly_on_bad_input
@in_a_side_process
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    pair = pair_named(args.model, args.workdir)
    side = configured_side(args.framework, args.threads, pair)
    steps = steps_of(pair)
    args.steps = args.steps or ",".join(steps)
    unknown = [step for step in args.steps.split(",") if step not in steps]
    if unknown:
        raise UserInputError(f"unknown steps {unknown}; choose from {', '.join(steps)}")
    with reusing_builds(side), os.fdopen(args.values_fd, "wb") as stream:
        send_steps(side, args, pair, stream)


if __name__ == "__main__":
    main()
