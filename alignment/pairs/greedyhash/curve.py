"""python -m alignment.pairs.greedyhash.curve: both frameworks train normally for a few epochs from the same weights, on
the same batches, each with its own dropout; their loss curves and final mAP are compared.

Dropout masks differ between the frameworks here, so the curves cannot agree number for number: the
check is that the mean final mAP over the seeds differ by less than curve_map_tolerance(seeds), set
from the measured spread of each framework against itself over seeds (alignment/pairs/greedyhash/tolerances.py,
docs/alignment.md, "Loss curves"). Every run with several seeds reports its own spread beside it.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from greedyhash_common.data.dataset import write_split
from greedyhash_common.hyperparameters import SEED
from greedyhash_common.infra.atomic import atomic_path, write_text
from greedyhash_common.infra.child_processes import ending_together, start_child
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.infra.workdir_lock import holding_workdir
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command

from alignment.paths import split_path
from alignment.reprod_format import load_values
from alignment.suite import prepare_weights, show_progress
from . import GREEDYHASH
from .tolerances import CURVE_FINAL_MAP_STD, curve_map_tolerance
from alignment.weight_sets import SEEDED, USER

SIDES = ("torch", "paddle")
CURVE_LEARNING_RATE = 1e-2
CURVE_EPOCHS = 12


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.pairs.greedyhash.curve", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=CURVE_EPOCHS,
                        help="from the seeded init, the built-in data is learnt only after a few epochs at the"
                             " default rate (docs/alignment.md, \"Loss curves\")")
    parser.add_argument("--eval-every", type=int, default=3, help="epochs between evaluations (and after the last)")
    parser.add_argument("--seeds", default=f"{SEED},{SEED + 1},{SEED + 2}",
                        help="one training per seed and framework; the seed drives dropout and the batch order")
    parser.add_argument("--bit", type=int, default=12)
    parser.add_argument("--lr", type=float, default=CURVE_LEARNING_RATE,
                        help="the reference's 1e-3 fine-tunes ImageNet weights; from a random start (the default"
                             " here, nothing can be downloaded) a few epochs need a larger rate")
    parser.add_argument("--size", type=int, default=64, help="image size (224 is the reference; 64 is fast)")
    parser.add_argument("--data", help="CIFAR-10 folder or archive; default: the built-in synthetic data")
    parser.add_argument("--weights", help="GreedyHash checkpoint to start from; default: seeded init")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs", "curve"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each side")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--paddle-python", default=sys.executable)
    return parser


def values_path(workdir, seed, side):
    return os.path.join(workdir, f"seed{seed}_{side}.npy")


def train_both(args, seed):
    """Both frameworks at once for one seed; returns the wall time."""
    started = time.perf_counter()
    running = []
    with ending_together() as children:
        for side in SIDES:
            python = args.torch_python if side == "torch" else args.paddle_python
            command = module_command(python, "alignment.pairs.greedyhash.curve_worker", side, "--workdir", args.workdir,
                                     "--out", values_path(args.workdir, seed, side), "--seed", seed, "--epochs",
                                     args.epochs, "--bit", args.bit, "--lr", args.lr, "--size", args.size,
                                     "--threads", args.threads, "--eval-every", args.eval_every, "--weight-set",
                                     USER if args.weights else SEEDED, *(["--data", args.data] if args.data else []))
            log = open(os.path.join(args.workdir, f"seed{seed}_{side}.log"), "w", encoding="utf-8")
            children.append(start_child(command, f"--{side}-python", cwd=PROJECT_ROOT, env=child_environment(),
                                        stdout=log, stderr=subprocess.STDOUT))
            running.append((side, children[-1], log))
        show_progress({log.name: process for _, process, log in running})
    failed = []
    for side, process, log in running:
        if process.wait():
            failed.append(f"{side} (see {log.name})")
        log.close()
    if failed:
        raise UserInputError(f"training failed for seed {seed}: {', '.join(failed)}")
    return time.perf_counter() - started


def spread(values):
    return float(np.max(values) - np.min(values)) if len(values) > 1 else 0.0


def summarize(runs, seeds, epochs, seconds):
    """The verdict and its figures from {(seed, side): values}."""
    final = {side: [float(runs[seed, side]["map"][-1]) for seed in seeds] for side in SIDES}
    difference = abs(float(np.mean(final["torch"])) - float(np.mean(final["paddle"])))
    tolerance = curve_map_tolerance(len(seeds))
    return {
        "passed": difference < tolerance,
        "tolerance": tolerance,
        "final_map": final,
        "mean_final_map": {side: float(np.mean(values)) for side, values in final.items()},
        "mean_final_map_difference": difference,
        "self_spread_over_seeds": {side: spread(values) for side, values in final.items()},
        "self_std_over_seeds": {side: float(np.std(values, ddof=1)) if len(values) > 1 else None
                                for side, values in final.items()},
        "per_seed_difference": [abs(a - b) for a, b in zip(final["torch"], final["paddle"])],
        "loss_per_epoch": {f"{side}/seed{seed}": _per_epoch(runs[seed, side]["loss_total"], epochs).tolist()
                           for seed in seeds for side in SIDES},
        "map_epochs": runs[seeds[0], SIDES[0]]["map_epoch"].astype(int).tolist(),
        "map_per_evaluation": {f"{side}/seed{seed}": runs[seed, side]["map"].tolist()
                               for seed in seeds for side in SIDES},
        "loss_difference_per_epoch": {f"seed{seed}": loss_difference_per_epoch(runs, seed, epochs).tolist()
                                      for seed in seeds},
        "seeds": seeds,
        "epochs": epochs,
        "seconds_per_seed": seconds,
    }


def _per_epoch(series, epochs):
    return np.array([chunk.mean() for chunk in np.array_split(series, epochs)])


def loss_difference_per_epoch(runs, seed, epochs):
    """Mean |paddle - torch| of the total loss per iteration, per epoch: the same batches, but each
    framework's own dropout masks, so the curves part from the first iteration on."""
    return _per_epoch(np.abs(runs[seed, "paddle"]["loss_total"] - runs[seed, "torch"]["loss_total"]), epochs)


def plot(runs, seed, path):
    import matplotlib

    matplotlib.use("Agg")  # no screen here, and none needed for a file
    import matplotlib.pyplot as plt

    torch_loss, paddle_loss = runs[seed, "torch"]["loss_total"], runs[seed, "paddle"]["loss_total"]
    figure, (curves, difference, scores) = plt.subplots(3, 1, figsize=(8, 9))
    curves.plot(torch_loss, label="torch")
    curves.plot(paddle_loss, label="paddle", alpha=0.8)
    curves.set(title=f"training loss per iteration (seed {seed})", ylabel="loss")
    curves.legend()
    difference.plot(paddle_loss - torch_loss, color="tab:red")
    difference.set(title="paddle - torch", ylabel="loss difference", xlabel="iteration")
    for side in SIDES:
        scores.plot(runs[seed, side]["map_epoch"], runs[seed, side]["map"], marker="o", label=side)
    scores.set(title="mAP on the query set against the database", xlabel="epoch", ylabel="mAP")
    scores.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90)
    plt.close(figure)


def markdown(summary):
    lines = ["# Loss curves and final mAP, torch vs Paddle", "",
             f"{summary['epochs']} epochs per run, seeds {', '.join(map(str, summary['seeds']))}; "
             f"verdict: **{'pass' if summary['passed'] else 'FAIL'}** (|mean final mAP difference| "
             f"{summary['mean_final_map_difference']:.4f} against tolerance {summary['tolerance']:.3f} for "
             f"{len(summary['seeds'])} seeds)", "",
             "| seed | torch mAP | paddle mAP | difference | last-epoch loss torch / paddle "
             "| mean \\|loss difference\\| per iteration, first / last epoch |",
             "| --- | --- | --- | --- | --- | --- |"]
    for seed, torch_map, paddle_map in zip(summary["seeds"], summary["final_map"]["torch"],
                                           summary["final_map"]["paddle"]):
        losses = [summary["loss_per_epoch"][f"{side}/seed{seed}"][-1] for side in SIDES]
        differences = summary["loss_difference_per_epoch"][f"seed{seed}"]
        lines.append(f"| {seed} | {torch_map:.4f} | {paddle_map:.4f} | {abs(torch_map - paddle_map):.4f} "
                     f"| {losses[0]:.4f} / {losses[1]:.4f} | {differences[0]:.4f} / {differences[-1]:.4f} |")
    lines += ["", "Spread of each framework against itself over seeds (max - min; standard deviation, the "
              f"tolerance assumes {CURVE_FINAL_MAP_STD}): " + ", ".join(
                  f"{side} {summary['self_spread_over_seeds'][side]:.4f}; "
                  + ("-" if summary["self_std_over_seeds"][side] is None
                     else f"{summary['self_std_over_seeds'][side]:.4f}") for side in SIDES) + ".",
              "Wall time per seed (both frameworks at once): "
              f"{', '.join(f'{s:.0f} s' for s in summary['seconds_per_seed'])}.",
              "", "![loss curves](curve.png)", ""]
    return "\n".join(lines)


def parse_seeds(text):
    try:
        seeds = [int(seed) for seed in text.split(",")]
    except ValueError:
        raise UserInputError(f"--seeds takes comma-separated integers, not {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise UserInputError(f"--seeds repeats a seed: {text}")
    return seeds


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    seeds = parse_seeds(args.seeds)
    if args.epochs < 1 or args.eval_every < 1:
        raise UserInputError("--epochs and --eval-every must be at least 1")
    args.workdir = os.path.abspath(args.workdir)
    with holding_workdir(args.workdir):
        write_split(args.data, split_path(args.workdir))
        prepare_weights(args.torch_python, args.bit, 0, args.workdir, args.threads, [USER if args.weights else SEEDED],
                        GREEDYHASH.NAME, args.weights)
        seconds = [train_both(args, seed) for seed in seeds]
        runs = {(seed, side): load_values(values_path(args.workdir, seed, side)) for seed in seeds for side in SIDES}
        summary = summarize(runs, seeds, args.epochs, seconds)
        plot(runs, seeds[0], os.path.join(args.workdir, "curve.png"))
        write_text(os.path.join(args.workdir, "curve.json"), json.dumps(summary, indent=2) + "\n")
        write_text(os.path.join(args.workdir, "curve.md"), markdown(summary))
        print(markdown(summary).split("![")[0].strip())
        sys.exit(0 if summary["passed"] else 1)


if __name__ == "__main__":
    main()
