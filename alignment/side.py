"""One framework's side of the alignment suite, in its own process.

  python -m alignment.side torch|paddle --bit 48 --workdir logs [--steps forward,loss,backward]
                                        [--dtypes float32,float64] [--threads 1]

Only the chosen framework is imported: the torch process never loads paddle and vice versa, so the
two sides may live in separate environments (pass each side's interpreter to `python -m alignment`).
"""
import argparse
import json
import os
import time

import numpy as np

from greedyhash_common.atomic import write_text
from greedyhash_common.errors import UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.hyperparameters import IMAGE_SIZE

from .paths import env_path, inputs_dir, side_values_path, split_path, weights_path
from .reprod_format import save_values
from .sides import configured_side
from .steps import BULK_IMAGE_SIZE, STEPS, StepContext, runs_in


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
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="image size of the data step's loaders")
    parser.add_argument("--bulk-size", type=int, default=BULK_IMAGE_SIZE)
    return parser


def run_steps(side, args):
    inputs = inputs_dir(args.workdir)
    images = np.load(os.path.join(inputs, "images.npy"), allow_pickle=False)
    labels = np.load(os.path.join(inputs, "labels.npy"), allow_pickle=False)
    for dtype in args.dtypes.split(","):
        context = StepContext(args.bit, dtype, weights_path(args.workdir, args.bit, side.WEIGHTS_SUFFIX), images,
                              labels, args.mask_seed, args.data, split_path(args.workdir), args.size, args.bulk_size)
        for step in (step for step in args.steps.split(",") if runs_in(step, dtype)):
            started = time.perf_counter()
            save_values(STEPS[step].run(side, context), side_values_path(args.workdir, dtype, step, side.NAME))
            print(f"{side.NAME} {step} {dtype}: {time.perf_counter() - started:.1f} s", flush=True)
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
