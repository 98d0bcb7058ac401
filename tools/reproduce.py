"""Reproduce the paper's table (`make reproduce DATA=... PRETRAINED=...`): train and evaluate each bit length,
then write logs/reproduce.md with this project's mAP beside the paper's and the seed's Paddle reproduction.

  python -m tools.reproduce --data cifar-10-python.tar.gz --pretrained alexnet_backbone.pdparams
                            [--framework paddle|torch] [--bits 12,24,32,48] [--epochs N] [-- extra train options]

Runs are kept in --runs-dir/<framework>-bit<BIT>; a run that already has a last checkpoint is resumed, so an
interrupted reproduction continues where it stopped. The reported mAP is the best over the evaluated epochs
on the query set (the model selection of the Paddle reproduction and DeepHash-pytorch), measured again by
the eval tool on the best checkpoint; the last epoch's mAP (what the official code reports) is beside it.
"""
import argparse
import datetime
import json
import os
import platform
import sys

from greedyhash_common.app.cli_options import (BEST_WEIGHTS_NAME, FRAMEWORKS, LAST_CHECKPOINT_NAME, RUN_HISTORY_NAME,
                                               positive_int)
from greedyhash_common.hyperparameters import BITS, EPOCHS
from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser

from .timed_commands import StepFailed, run_step

PAPER_MAP = {12: 0.774, 24: 0.795, 32: 0.810, 48: 0.822}  # Su et al., NeurIPS 2018, CIFAR-10 (I)
SEED_PADDLE_MAP = {12: 0.798, 24: 0.809, 32: 0.817, 48: 0.819}  # the seed's Paddle reproduction


def bit_list(text):
    try:
        bits = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of bit lengths, got {text!r}") from None
    if not bits or any(bit not in BITS for bit in bits):
        raise argparse.ArgumentTypeError(f"bit lengths must be among {', '.join(map(str, BITS))}, got {text!r}")
    return bits


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m tools.reproduce", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CIFAR-10 (default: the built-in synthetic data, which is no reproduction)")
    parser.add_argument("--pretrained", help="the ImageNet AlexNet backbone for the chosen framework")
    parser.add_argument("--framework", choices=FRAMEWORKS, default="paddle")
    parser.add_argument("--bits", type=bit_list, default=list(BITS), help="default 12,24,32,48")
    parser.add_argument("--epochs", type=positive_int, help=f"default: the configuration's ({EPOCHS})")
    parser.add_argument("--image-size", type=positive_int, help="default: the configuration's (224)")
    parser.add_argument("--runs-dir", default=os.path.join("logs", "reproduce"), help="default %(default)s")
    parser.add_argument("--report", default=os.path.join("logs", "reproduce.md"), help="default %(default)s")
    parser.add_argument("--quiet", action="store_true", help="capture the runs' output instead of showing it")
    parser.add_argument("train_options", nargs=argparse.REMAINDER,
                        help="after --: more options for every training run (e.g. -- --split-file s.npz)")
    return parser


def train_and_evaluate(args, bit):
    """Train (or resume) one bit length, evaluate its best checkpoint; return the row's figures."""
    framework = args.framework
    run_dir = os.path.join(args.runs_dir, f"{framework}-bit{bit}")
    options = ["--bit", bit, "--output-dir", run_dir]
    options += [value for flag, value in (("--data", args.data), ("--pretrained", args.pretrained),
                                          ("--epochs", args.epochs), ("--image-size", args.image_size))
                if value is not None for value in (flag, value)]
    if os.path.isfile(os.path.join(run_dir, LAST_CHECKPOINT_NAME[framework])):
        options += ["--resume", run_dir]
    extra = [option for option in args.train_options if option != "--"]
    train_seconds, _ = run_step(f"train {bit} bits", f"{framework}_impl.train", options + extra, capture=args.quiet)
    evaluation_path = os.path.join(run_dir, "eval.json")
    eval_seconds, _ = run_step(f"eval {bit} bits", f"{framework}_impl.eval", [
        "--checkpoint", os.path.join(run_dir, BEST_WEIGHTS_NAME[framework]), "--json", evaluation_path],
        capture=args.quiet)
    with open(os.path.join(run_dir, RUN_HISTORY_NAME), encoding="utf-8") as handle:
        history = json.load(handle)
    with open(evaluation_path, encoding="utf-8") as handle:
        evaluation = json.load(handle)
    evaluated = [record for record in history if "map" in record]
    return {"bit": bit, "map": evaluation["map"], "query_accuracy": evaluation["query_accuracy"],
            "last_map": evaluated[-1]["map"], "best_epoch": max(evaluated, key=lambda record: record["map"])["epoch"],
            "epochs": len(history), "train_seconds": sum(record["seconds"] for record in history),
            "images_per_second": sum(record["images"] for record in history)
            / sum(record["seconds"] for record in history),
            "eval_seconds": eval_seconds, "wall_seconds": train_seconds + eval_seconds, "evaluation": evaluation}


def report_text(args, rows):
    first = rows[0]["evaluation"]
    caveats = []
    if args.data is None:
        caveats.append("the data is the built-in synthetic set, not CIFAR-10")
    if args.pretrained is None:
        caveats.append("the backbone was not ImageNet-pretrained")
    if any(row["epochs"] < EPOCHS for row in rows):
        caveats.append(f"fewer than the reference {EPOCHS} epochs")
    lines = ["# GreedyHash on CIFAR-10 (I): this project beside the paper", ""]
    if caveats:
        lines += [f"**Not comparable with the paper: {'; '.join(caveats)}.** This table only shows that the "
                  "chain runs.", ""]
    lines += ["| bits | this project (best mAP) | last epoch mAP | query accuracy | paper | seed's Paddle reproduction "
              "| epochs (best) | training time | img/s | eval time |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {row['bit']} | {row['map']:.3f} | {row['last_map']:.3f} | {row['query_accuracy']:.3f} "
              f"| {PAPER_MAP[row['bit']]:.3f} | {SEED_PADDLE_MAP[row['bit']]:.3f} | {row['epochs']} "
              f"({row['best_epoch']}) | {_duration(row['train_seconds'])} | {row['images_per_second']:.0f} "
              f"| {_duration(row['eval_seconds'])} |" for row in rows]
    lines += ["", f"- framework: {first['framework']}, device: {first['device']}; CPU: {_cpu_model()}, {os.cpu_count()} cores, "
                  f"{platform.platform()}, Python {platform.python_version()}",
              f"- data: {first['data']} (protocol {first['protocol']}, {first['query_images']} query / "
              f"{first['database_images']} database images); image size {first['image_size']}; "
              f"pretrained backbone: {args.pretrained or 'none'}",
              f"- mAP: whole database, Hamming ranking, ties by database index; best over the evaluated epochs, "
              f"re-measured by python -m {args.framework}_impl.eval on the best checkpoint",
              f"- runs: {os.path.abspath(args.runs_dir)}; written {datetime.datetime.now():%Y-%m-%d %H:%M}"]
    return "\n".join(lines) + "\n"


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def _duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    try:
        rows = [train_and_evaluate(args, bit) for bit in args.bits]
    except StepFailed as failure:
        print(f"reproduce stopped: {failure}", file=sys.stderr)
        sys.exit(1)
    write_text(args.report, report_text(args, rows))
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
