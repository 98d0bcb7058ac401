"""The quick end-to-end chain on the Paddle side (`make lite`), in the spirit of Paddle's train-and-infer
pipeline checks (TIPC lite_train_lite_infer): train 2 epochs on tiny built-in data, evaluate, export,
infer with the Paddle Inference predictor and predict with the dynamic graph, each step run as a user
runs it and checked. The predictor and the dynamic graph must give the same code by the alignment
suite's codes rule (equal, but for signs where |h| is within float32 rounding of zero).

  python -m tools.lite_chain [--workdir logs/lite] [--threads N]

The tiny data: the built-in synthetic set, protocol cifar10-2 with 2 query and 5 training images per
class (20 query, 50 train = database), 64 px, 12 bits.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
from PIL import Image

from alignment.check import compare_codes
from alignment.tolerances import tolerance
from greedyhash_common.app.cli_options import BEST_WEIGHTS_NAME, LAST_CHECKPOINT_NAME, RUN_HISTORY_NAME, positive_int
from greedyhash_common.app.option_checks import check_output_dir
from greedyhash_common.data.dataset import write_split
from greedyhash_common.hyperparameters import SEED
from greedyhash_common.infra.errors import OneLineArgumentParser, exits_cleanly_on_bad_input
from greedyhash_common.infra.workdir_lock import LOCK_NAME, holding_workdir

from .timed_commands import StepFailed, check, run_step

BIT = 12
IMAGE_SIZE = 64
EPOCHS = 2
PROTOCOL = "cifar10-2"
QUERY_PER_CLASS, TRAIN_PER_CLASS = 2, 5
PROBABILITY_TOLERANCE = 1e-5  # predictor vs dynamic model, float32


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m tools.lite_chain", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=os.path.join("logs", "lite"), help="emptied first (default %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all cores)")
    return parser


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def run_chain(workdir, threads=None, step_done=lambda step, seconds: None):
    """Run and check every step, calling step_done(step, seconds) as each ends; return [(step, seconds)].
    Raises StepFailed."""
    workdir = os.path.abspath(workdir)
    with holding_workdir(workdir):
        return _run_chain_held(workdir, threads, step_done)


def _emptied(workdir):
    """Remove what an earlier chain left in `workdir`, but the lock this run holds there."""
    for entry in os.scandir(workdir):
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)


def _run_chain_held(workdir, threads, step_done):
    _emptied(workdir)
    paths = {name: os.path.join(workdir, name) for name in ("split.npz", "train", "eval.json", "export",
                                                             "infer.json", "predict.json", "predict.png")}
    runtime = ["--threads", threads] if threads else []
    timings = []

    def finished(step, seconds):
        timings.append((step, seconds))
        step_done(step, seconds)

    started = time.perf_counter()
    write_split(None, paths["split.npz"], PROTOCOL, SEED, QUERY_PER_CLASS, TRAIN_PER_CLASS)
    finished("split", time.perf_counter() - started)

    seconds, _ = run_step("train", "paddle_impl.train", [
        "--bit", BIT, "--epochs", EPOCHS, "--image-size", IMAGE_SIZE, "--protocol", PROTOCOL,
        "--split-file", paths["split.npz"], "--output-dir", paths["train"], *runtime])
    finished("train", seconds)
    best_map = check_training(paths["train"])

    best = os.path.join(paths["train"], BEST_WEIGHTS_NAME["paddle"])
    seconds, _ = run_step("eval", "paddle_impl.eval", ["--checkpoint", best, "--json", paths["eval.json"], *runtime])
    finished("eval", seconds)
    evaluation = read_json(paths["eval.json"])
    check(evaluation["map"] == best_map, f"eval: mAP {evaluation['map']} differs from the training's best {best_map}")

    seconds, _ = run_step("export", "paddle_impl.export", ["--checkpoint", best, "--output-dir", paths["export"]])
    finished("export", seconds)
    check(os.path.isfile(os.path.join(paths["export"], "model.pdiparams")), "export: no model.pdiparams written")

    seconds, _ = run_step("infer", "paddle_impl.infer", ["--model-dir", paths["export"], "--index", 0, "--json",
                                                         paths["infer.json"], "--device", "cpu", *runtime])
    finished("infer", seconds)

    seconds, _ = run_step("predict", "paddle_impl.predict", [
        "--checkpoint", best, "--index", 0, "--top-k", 5, "--output", paths["predict.png"], "--json",
        paths["predict.json"], *runtime])
    finished("predict", seconds)
    check_inference_matches(read_json(paths["infer.json"]), read_json(paths["predict.json"]), paths["predict.png"])
    return timings


def check_training(run_dir):
    for name in (LAST_CHECKPOINT_NAME["paddle"], BEST_WEIGHTS_NAME["paddle"], "config.yaml", RUN_HISTORY_NAME):
        check(os.path.isfile(os.path.join(run_dir, name)), f"train: {name} was not written")
    history = read_json(os.path.join(run_dir, RUN_HISTORY_NAME))
    check(len(history) == EPOCHS, f"train: {len(history)} epochs in the history, expected {EPOCHS}")
    check(all(math.isfinite(record["loss"]) for record in history), "train: a non-finite loss in the history")
    maps = [record["map"] for record in history if "map" in record]
    check(maps and all(0 <= value <= 1 for value in maps), f"train: mAP values {maps} not in [0, 1]")
    return max(maps)


def check_inference_matches(inferred, predicted, grid_path):
    """The exported model under Paddle Inference and the dynamic graph agree on the same image."""
    codes = compare_codes("code", *(np.array([bit == "1" for bit in result["code"]]) for result in (predicted, inferred)),
                          np.asarray(predicted["h"]), tolerance("forward", "float32", "h"))
    check(codes.passed, f"infer code {inferred['code']} != predict code {predicted['code']} ({codes.note})")
    if inferred["code"] == predicted["code"]:  # an excused flip moves the class scores: nothing more to compare
        check(inferred["class"] == predicted["class"], "infer and predict disagree on the class")
        difference = abs(inferred["probability"] - predicted["probability"])
        check(difference <= PROBABILITY_TOLERANCE, f"infer and predict probabilities differ by {difference:.2e}")
    with Image.open(grid_path) as grid:
        check(grid.format == "PNG" and grid.width > grid.height, f"predict: {grid_path} is not the expected grid")


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_output_dir(args.workdir, "--workdir")
    started = time.perf_counter()
    try:
        run_chain(args.workdir, args.threads, lambda step, seconds: print(f"  {step:<8s} {seconds:6.1f} s  ok",
                                                                          flush=True))
    except StepFailed as failure:
        print(f"lite chain FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"lite chain passed in {time.perf_counter() - started:.1f} s (work files in {args.workdir})")


if __name__ == "__main__":
    main()
