"""Command-line options shared by both frameworks' entry points, defined once so they cannot drift.

The training parser lives in `train_config`; this module holds the option groups it shares with the
evaluation, prediction, export and inference parsers, the value checks, and the rule that fills the
options a user left out from the training run a checkpoint came from.
"""
import argparse
import os

from ..data.split import PROTOCOLS
from ..hyperparameters import BATCH_SIZE, BITS, IMAGE_SIZE
from ..infra.errors import OneLineArgumentParser, UserInputError
from ..metric.hamming_map import TIE_MODES

FRAMEWORKS = ("torch", "paddle")
TRAINING_RUNS_DIR = os.path.join("logs", "train")
RUN_CONFIG_NAME = "config.yaml"
RUN_SPLIT_NAME = "split.npz"
RUN_HISTORY_NAME = "history.json"
BEST_WEIGHTS_NAME = {"torch": "best.pth", "paddle": "best.pdparams"}
LAST_CHECKPOINT_NAME = {"torch": "last.pth", "paddle": "last.pdstate"}
DEFAULT_BIT = 48


def positive_int(text):
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def positive_float(text):
    value = _number(float, text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def non_negative_float(text):
    value = _number(float, text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative finite number, got {text}")
    return value


def bit_length(text):
    value = _number(int, text)
    if value not in BITS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(map(str, BITS))}, got {text}")
    return value


def _number(kind, text):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None


def default_grid_path(framework):
    return os.path.join("logs", f"predict-{framework}.png")


def default_run_dir(framework, bit):
    return os.path.join(TRAINING_RUNS_DIR, f"{framework}-bit{bit}")


def add_data_options(parser, with_image_size=True):
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="PATH",
                       help="CIFAR-10: cifar-10-python.tar.gz or the cifar-10-batches-py/ folder "
                            "(default: the built-in synthetic data; nothing is downloaded)")
    group.add_argument("--split-file", metavar="NPZ",
                       help="the query/train/database split (.npz); drawn and saved there if missing")
    group.add_argument("--protocol", choices=sorted(PROTOCOLS), help="default: cifar10-1, CIFAR-10 (I)")
    if with_image_size:
        group.add_argument("--image-size", type=positive_int, metavar="PX",
                           help=f"images are resized from 32 to this (default {IMAGE_SIZE}; AlexNet also accepts 64)")


def add_runtime_options(parser, with_loaders=True):
    group = parser.add_argument_group("runtime")
    group.add_argument("--device", choices=("cpu", "gpu"), help="default: the GPU when there is one")
    group.add_argument("--threads", type=positive_int, help="CPU threads (default: all cores)")
    if with_loaders:
        group.add_argument("--num-workers", type=non_negative_int,
                           help="threads preparing batches ahead of the network (default 0: none)")
        group.add_argument("--deterministic", action="store_true",
                           help="deterministic GPU kernels and no TF32 (slower; the CPU is deterministic anyway)")


def _checkpoint_parser(prog, description, framework):
    """Options of every tool that loads a trained model; absent options come from its training run."""
    parser = OneLineArgumentParser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", metavar="FILE",
                        help=f"weights ({BEST_WEIGHTS_NAME[framework]}) or a training checkpoint "
                             f"({LAST_CHECKPOINT_NAME[framework]}); default: "
                             f"{default_run_dir(framework, 'BIT')}/{BEST_WEIGHTS_NAME[framework]}")
    parser.add_argument("--bit", type=bit_length,
                        help=f"code length (default: the checkpoint's training run, else {DEFAULT_BIT})")
    return parser


def get_eval_args_parser(framework):
    parser = _checkpoint_parser(f"python -m {framework}_impl.eval",
                                "Hamming-ranking mAP and query accuracy of a trained GreedyHash model.", framework)
    add_data_options(parser)
    parser.add_argument("--batch-size", type=positive_int, help=f"default {BATCH_SIZE}")
    parser.add_argument("--ties", choices=TIE_MODES,
                        help="order inside equal Hamming distances: by database index (default) or the "
                             "average over all orders; see greedyhash_common/metric/hamming_map.py")
    parser.add_argument("--json", metavar="FILE", help="also write the results to this JSON file")
    add_runtime_options(parser)
    return parser


def add_query_image_options(parser):
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", metavar="FILE", help="an image file (any size; resized to 32x32 like CIFAR-10)")
    query.add_argument("--index", type=non_negative_int, metavar="N", help="the N-th query image of the split")


def get_predict_args_parser(framework):
    parser = _checkpoint_parser(f"python -m {framework}_impl.predict",
                                "Class, probability and hash code of one image, and its nearest database "
                                "images by Hamming distance, drawn as a PNG grid.", framework)
    add_query_image_options(parser)
    parser.add_argument("--top-k", type=positive_int, help="database images to retrieve (default 10)")
    parser.add_argument("--output", metavar="PNG",
                        help=f"the grid to write (default {default_grid_path(framework)})")
    parser.add_argument("--batch-size", type=positive_int, help=f"for encoding the database (default {BATCH_SIZE})")
    parser.add_argument("--json", metavar="FILE", help="also write the results to this JSON file")
    add_data_options(parser)
    add_runtime_options(parser)
    return parser


def get_export_args_parser():
    parser = _checkpoint_parser("python -m paddle_impl.export",
                                "Save a trained model as a static Paddle inference model (paddle.jit.save).",
                                "paddle")
    parser.add_argument("--image-size", type=positive_int, metavar="PX",
                        help=f"input size of the exported model (default: the training run's, else {IMAGE_SIZE})")
    parser.add_argument("--output-dir", metavar="DIR", help="default logs/export/paddle-bitBIT")
    return parser


def get_infer_args_parser():
    parser = OneLineArgumentParser(
        prog="python -m paddle_impl.infer", argument_default=argparse.SUPPRESS,
        description="Run an exported model with the Paddle Inference predictor: class, probability and code.")
    parser.add_argument("--model-dir", metavar="DIR", help="what paddle_impl.export wrote "
                                                            f"(default logs/export/paddle-bit{DEFAULT_BIT})")
    add_query_image_options(parser)
    parser.add_argument("--json", metavar="FILE", help="also write the results to this JSON file")
    add_data_options(parser, with_image_size=False)  # the exported model's input size is fixed
    add_runtime_options(parser, with_loaders=False)
    return parser


def resolve_device(requested, gpu_available, framework):
    """'gpu' or 'cpu': the GPU by default when there is one; asking for an absent GPU is an error."""
    if requested == "gpu" and not gpu_available:
        raise UserInputError(f"--device gpu: this {framework} build sees no GPU (CPU-only build, no CUDA device, "
                             "or CUDA_VISIBLE_DEVICES hides it); use --device cpu")
    if requested is None:
        return "gpu" if gpu_available else "cpu"
    return requested


def default_threads():
    return os.cpu_count() or 1

