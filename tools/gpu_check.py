"""Does alignment hold on this machine's GPU? Forward and backward on the GPU in both frameworks,
compared with the CPU float64 reference (`make gpu-check`).

  python -m tools.gpu_check [--paddle-python .venv-gpu/bin/python] [--workdir logs/gpu-env/gpu-check]
                            [--bit 48] [--size 224] [--device auto|cpu|gpu] [--weights FILE] [--data PATH]

The suite's batch (4 images of the built-in data, or of --data) and weights (seeded, or --weights) go
through each framework, each in its own process and interpreter (this one for torch, --paddle-python
for Paddle; NVIDIA_TF32_OVERRIDE=0, cuDNN deterministic): in float64 on the CPU, and in float32 and
float64 on the device, the GPU when the framework sees one, else the CPU. Values: logits, h, b, the
losses, the gradients of the input, of h and of every parameter; tolerances: the alignment suite's
(alignment/tolerances.py) for the run's precision.

- float64 on the GPU, each framework, against torch's CPU float64 run, every value: near-exact (1e-10
  relative), so a GPU kernel that computes something else shows; Paddle's CPU float64 run is the
  baseline row.
- float32 on the GPU, each framework, against the same reference: outputs and losses within the float32
  limits (TF32 left on would fail: docs/gpu.md, "On a GPU machine, run first"); codes b identical except
  where |h| is within tolerance of zero.
- float32 gradients: Paddle's against torch's on the same device, every value, as the suite's float32
  backward step compares them (a float32 max-pool or ReLU decision flipped by rounding moves a gradient
  beyond the limits against float64 in both frameworks alike). When only gradients differ, both sides
  record every layer on the device and the suite's layer localization judges the difference
  (unexplained_by_rounding): passed as rounding only if every Paddle layer agrees fed torch's values
  and the gradients that differ are those that flow on from the one layer where they first part.

Writes <workdir>/gpu_check.json and prints one row per run; exits 1 if any run fails, 2 on bad input.
Without a GPU (as in CI) the device runs are CPU runs: that tests this check's own path, not a GPU.
"""
import argparse
import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np

from alignment.check import check_step
from alignment.diagnosis import DEFECT, ROUNDING, Finding
from alignment.layers.localize import compare_records, load_layer_values
from alignment.pairs.greedyhash import GREEDYHASH
from alignment.reprod_format import load_values
from alignment.suite import show_progress
from alignment.transforms import preprocess
from alignment.verdict import Verdict, all_passed, verdict_table
from greedyhash_common.app.cli_options import bit_length, non_negative_int, positive_int
from greedyhash_common.app.option_checks import (check_image_size, check_interpreter, check_output_dir,
                                                 check_weights_file)
from greedyhash_common.data.cifar10 import load_cifar10
from greedyhash_common.data.source import resolve_data_path
from greedyhash_common.hyperparameters import IMAGE_SIZE
from greedyhash_common.infra.atomic import atomic_path, write_text
from greedyhash_common.infra.child_processes import ending_together, run_child, start_child
from greedyhash_common.infra.errors import (OneLineArgumentParser, UserInputError, child_failure,
                                            exits_cleanly_on_bad_input)
from greedyhash_common.infra.workdir_lock import holding_workdir
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command

from .gpu_check_worker import inputs_path, isolated_path, load_layer_record, run_path

REFERENCE = ("torch", "cpu", "float64")
ALL_STEPS = ("forward", "loss", "backward")
CODE_KEYS = {"b": "h"}
NVIDIA_DEVICES = "/dev/nvidia[0-9]*"  # the driver's device files, one per GPU


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m tools.gpu_check", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paddle-python", default=sys.executable, help="the Paddle environment's interpreter")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs", "gpu-env", "gpu-check"))
    parser.add_argument("--bit", type=bit_length, default=48)
    parser.add_argument("--size", type=positive_int, default=IMAGE_SIZE)
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="auto: the GPU when the framework sees one; gpu: fail if it does not")
    parser.add_argument("--weights", help="GreedyHash checkpoint (.pth or .pdparams); default: seeded init")
    parser.add_argument("--data", help="CIFAR-10 folder or archive; default: the built-in synthetic data")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    return parser


def check_options(args):
    """Every option, before any work: a GPU asked for on a machine without one is refused now, not by the
    sides after the inputs and weights are written."""
    check_image_size(args.size, "--size")
    check_interpreter(args.torch_python, "--torch-python")
    check_interpreter(args.paddle_python, "--paddle-python")
    check_output_dir(args.workdir, "--workdir")
    if args.weights is not None:
        check_weights_file(args.weights)
    if args.device == "gpu" and not glob.glob(NVIDIA_DEVICES):
        raise UserInputError(f"--device gpu: this machine has no NVIDIA GPU (no {NVIDIA_DEVICES}); use --device auto "
                             "or cpu")


def side_environment():
    """The sides' environment, TF32 off in cuBLAS and cuDNN for both frameworks (Paddle has no Python switch
    for all of it)."""
    return child_environment(NVIDIA_TF32_OVERRIDE="0")


def write_inputs(workdir, data, batch_size, size):
    """The batch: the first image of each class in turn (as the alignment suite picks its batch), through
    the references' preprocessing in float64; and their labels."""
    images, labels = load_cifar10(resolve_data_path(data))
    per_class = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    order = [indices[rank] for rank in range(max(map(len, per_class))) for indices in per_class if rank < len(indices)]
    chosen = np.asarray(order[:batch_size])
    for name, array in (("images.npy", preprocess(images[chosen], size)), ("labels.npy", labels[chosen])):
        with atomic_path(inputs_path(workdir, name)) as tmp:
            np.save(tmp, array, allow_pickle=False)


def write_weights(args):
    command = module_command(args.torch_python, "tools.gpu_check_worker", "weights", "--workdir", args.workdir, "--bit",
                              args.bit, "--seed", args.seed, *(["--weights", args.weights] if args.weights else []))
    done = run_child(command, "--torch-python", cwd=PROJECT_ROOT, env=side_environment())
    if done.returncode:
        raise UserInputError(f"preparing the weights failed: {child_failure(done.returncode, done.stderr)}")


def step_of(key):
    """The suite's step whose tolerances hold `key`."""
    if key.startswith("grad."):
        return "backward"
    return "loss" if key.startswith("loss_") else "forward"


def compare(expected, actual, dtype, steps=("forward", "loss", "backward")):
    """KeyResults of `actual` against `expected` (cast to the run's dtype) for the keys of `steps`, with the
    suite's tolerances for GreedyHash (its float32 gradients below the first max-pool held as the suite's
    backward step holds them)."""
    results = []
    for step in steps:
        keys = [key for key in expected if step_of(key) == step]
        wanted = {key: expected[key].astype(actual[key].dtype) if key in actual else expected[key] for key in keys}
        got = {key: actual[key] for key in actual if step_of(key) == step}
        results += check_step(step, dtype, wanted, got, {k: v for k, v in CODE_KEYS.items() if k in keys},
                              overrides=GREEDYHASH.TOLERANCES).keys
    return results


def start_side(args, framework, *options):
    """(framework, log, process) of one side started with `options`, in the sides' environment."""
    python = args.torch_python if framework == "torch" else args.paddle_python
    log = os.path.join(args.workdir, f"side_{framework}{'_layers' if options else ''}.log")
    command = module_command(python, "tools.gpu_check_worker", framework, "--workdir", args.workdir, "--bit",
                              args.bit, "--device", args.device, "--seed", args.seed, *options)
    with open(log, "w", encoding="utf-8") as handle:
        return framework, log, start_child(command, f"--{framework}-python", cwd=PROJECT_ROOT,
                                           env=side_environment(), stdout=handle, stderr=subprocess.STDOUT)


def run_together(args, frameworks, *options):
    """Start the sides of `frameworks` at once and wait for them; a side that cannot start stops the others."""
    running = []
    with ending_together() as children:
        for framework in frameworks:
            running.append(start_side(args, framework, *options))
            children.append(running[-1][2])
        wait_for(running)


def wait_for(running):
    show_progress({log: process for _, log, process in running})
    failed = [(framework, log) for framework, log, process in running if process.wait()]
    if failed:
        details = "\n".join(f"{framework} side failed:\n{open(log, encoding='utf-8').read().strip()[-2000:]}"
                            for framework, log in failed)
        raise UserInputError(details)


def run_sides(args):
    """Both sides' runs, at once."""
    run_together(args, ("torch", "paddle"))


def localize_float32(args):
    """The float32 Localization of the two sides' layer records on their devices (torch's first: the Paddle
    side feeds its layers torch's values)."""
    for framework in ("torch", "paddle"):
        run_together(args, (framework,), "--layers")
    return compare_records("float32", load_layer_record(args.workdir, "torch"),
                           load_layer_record(args.workdir, "paddle"),
                           load_layer_values(isolated_path(args.workdir, "paddle")), GREEDYHASH,
                           reference_isolated=load_layer_values(isolated_path(args.workdir, "torch")))


def unexplained_by_rounding(localization, failing_keys):
    """Why float32 gradients that differ (`failing_keys`, the outputs and losses agreeing) are not a
    max-pool or ReLU decision flipped by rounding; None when they are: every Paddle layer agrees fed
    torch's values, the eval-mode gradients first part at one layer while the gradient reaching it still
    agrees, and only the gradients that flow on from there (the input's, the parameters' of the layers
    that ran before it) differ. A parameter gradient computed wrongly shows in no layer's input or
    output: it differs with every layer agreeing, or on the wrong side of the flip."""
    if localization.paddle_only:
        return f"Paddle layers with no torch counterpart: {', '.join(localization.paddle_only)}"
    isolated = localization.differing_alone()
    if isolated:
        return f"Paddle layers that differ fed torch's values: {', '.join(isolated)}"
    divergence = localization.trace("eval", "backward").divergence()
    if divergence is None or divergence[1] != "at":
        return f"{', '.join(failing_keys)} differ(s) while every layer's gradients agree"
    layers = [row.layer for row in localization.trace("eval", "forward").rows]
    before = layers[:layers.index(divergence[0].layer)]
    unexplained = [key for key in failing_keys
                   if key != "grad.input" and not any(key.startswith(f"grad.{layer}.") for layer in before)]
    if unexplained:
        return (f"{', '.join(unexplained)} differ(s), though the gradients first part at {divergence[0].layer},"
                f" after their layers")
    return None


def judged_by_layers(args, rows):
    """`rows`, the float32 framework-against-framework row (the last) judged by the layer localization
    when it fails on gradients alone: its finding rounding, or a defect whose reason names the layers."""
    row = rows[-1]
    if row.passed or not all(key.startswith("grad.") for key in row.failing_keys):
        return rows
    localization = localize_float32(args)
    reason = unexplained_by_rounding(localization, row.failing_keys)
    if reason is None:
        flipped = localization.trace("eval", "backward").divergence()[0]
        finding = Finding(ROUNDING, f"a decision of {flipped.layer} ({flipped.types}) flipped, every Paddle layer"
                          " agrees fed torch's values, only the gradients that flow on from it differ", row.failing_keys)
    else:
        finding = Finding(DEFECT, f"not rounding: {reason}", row.failing_keys)
    judged = dataclasses.replace(row, findings=(finding,), note=f"{finding.kind}: {finding.reason}")
    return rows[:-1] + [judged]


def read_env(workdir, framework):
    path = os.path.join(workdir, f"{framework}_env.json")
    if not os.path.isfile(path):  # the side's interpreter exited 0 without running the side
        raise UserInputError(f"the {framework} side ended without writing {path}; its output: "
                             f"{os.path.join(workdir, f'side_{framework}.log')}")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def comparisons(envs):
    """[(run, against, steps)], runs named (framework, device, dtype). float64 anywhere must equal torch's
    CPU float64 run near-exactly. A float32 run's outputs and losses are held to the float32 limits
    against it too, but not its gradients: a float32 max-pool or ReLU decision flipped by rounding moves
    a gradient beyond them (docs/tolerances.md), so float32 gradients are compared framework against
    framework on the same device, as the suite's backward step does (every key, float32 limits)."""
    devices = {framework: envs[framework]["device"] for framework in ("torch", "paddle")}
    rows = [(("paddle", "cpu", "float64"), REFERENCE, ALL_STEPS)]
    for framework, device in devices.items():
        if device != "cpu":
            rows.append(((framework, device, "float64"), REFERENCE, ALL_STEPS))
    for framework, device in devices.items():
        rows.append(((framework, device, "float32"), REFERENCE, ("forward", "loss")))
    rows.append((("paddle", devices["paddle"], "float32"), ("torch", devices["torch"], "float32"), ALL_STEPS))
    return rows


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunVerdict(Verdict):
    """The verdict of one run of a framework on a device against another run (alignment.verdict)."""
    run: str
    against: str
    keys: str  # which keys were compared: all, or the outputs and losses

    def as_json(self):
        return {"run": self.run, "against": self.against, "keys": self.keys, **super().as_json(),
                "failing_keys": list(self.failing_keys)}

    @classmethod
    def from_json(cls, entry):
        return cls(run=entry["run"], against=entry["against"], keys=entry["keys"], **cls.fields_of_json(entry))


def summary(workdir, envs):
    """The RunVerdict of every comparison, judged by its keys alone."""
    rows = []
    for run, against, steps in comparisons(envs):
        results = compare(load_values(run_path(workdir, *against)), load_values(run_path(workdir, *run)), run[2],
                          steps)
        failing = tuple(result.name for result in results if not result.passed)
        worst = max([result for result in results if not result.passed] or results, key=lambda result: result.excess())
        note = "; ".join(sorted({result.note for result in results if result.note}))
        rows.append(RunVerdict(run=describe_run(run, envs), against=describe_run(against, envs),
                               keys="all" if steps == ALL_STEPS else "outputs and losses", worst_key=worst.name,
                               max_abs=worst.max_abs, max_rel=worst.max_rel, limit=worst.limit, note=note,
                               findings=(Finding(DEFECT, note or "differs beyond its limit", failing),) if failing else ()))
    return rows


def describe_run(run, envs):
    framework, device, dtype = run
    return f"{framework} {envs[framework]['device_names'][device]} {dtype}"


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_options(args)
    args.workdir = os.path.abspath(args.workdir)
    with holding_workdir(args.workdir):
        check_on_gpu(args)


def check_on_gpu(args):
    """The check, in a work folder this process holds."""
    os.makedirs(os.path.join(args.workdir, "inputs"), exist_ok=True)
    write_inputs(args.workdir, args.data, args.batch_size, args.size)
    write_weights(args)
    run_sides(args)
    envs = {framework: read_env(args.workdir, framework) for framework in ("torch", "paddle")}
    rows = judged_by_layers(args, summary(args.workdir, envs))
    passed = all_passed(rows)
    on_gpu = [framework for framework in ("torch", "paddle") if envs[framework]["device"] == "gpu"]
    write_text(os.path.join(args.workdir, "gpu_check.json"),
               json.dumps({"passed": passed, "on_gpu": on_gpu, "env": envs, "runs": [row.as_json() for row in rows]}, indent=2, default=str)
               + "\n")
    print(verdict_table(rows, [("run", 22), ("against", 22), ("keys", 18)]))
    for framework in ("torch", "paddle"):
        if framework not in on_gpu:
            reason = "--device cpu" if envs[framework]["gpu_visible"] else f"{framework} sees no GPU"
            print(f"{reason}: {framework}'s device runs ran on the CPU (this check's CPU path, not a GPU test)")
    print(f"gpu-check {'passed' if passed else 'FAILED'}; details in {args.workdir}/gpu_check.json")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
