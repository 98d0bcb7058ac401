"""python -m alignment: run alignment steps on both frameworks, compare, report, and exit non-zero on failure.

The torch and Paddle sides run in two processes at once (one thread each by default, so two cores
are used); each may use its own interpreter (--torch-python, --paddle-python).
"""
import argparse
import json
import os
import subprocess
import sys

from greedyhash_common.atomic import write_text
from greedyhash_common.errors import UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.hyperparameters import IMAGE_SIZE

from .check import StepResult, _failure, check_step, write_reports
from .inputs import write_input_batch
from .paths import diff_paths, env_path, side_values_path
from .reprod_format import load_values
from .steps import STEPS

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = ("float32", "float64")


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, from: {', '.join(STEPS)}")
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--bit", type=int, default=48)
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="input height and width (224, or 64 for speed)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--data", help="CIFAR-10 folder or archive; default: the built-in synthetic data")
    parser.add_argument("--weights", help="GreedyHash checkpoint (.pth or .pdparams); default: seeded init")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization and dropout masks")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each side")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--paddle-python", default=sys.executable)
    return parser


def _split_choice(value, allowed, what):
    chosen = value.split(",")
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise UserInputError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def _module_command(python, module, *arguments):
    return [python, "-m", module, *map(str, arguments)]


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
    return env


def prepare(args):
    write_input_batch(args.workdir, args.data, args.batch_size, args.size)
    command = _module_command(args.torch_python, "alignment.prepare_weights", "--bit", args.bit, "--seed",
                              args.seed, "--workdir", args.workdir, "--threads", args.threads)
    if args.weights:
        command += ["--weights", args.weights]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=_environment(), capture_output=True, text=True)
    if done.returncode:
        raise UserInputError(f"preparing the weights failed:\n{done.stderr.strip()}")


def run_sides(args, steps, dtypes):
    """Start both sides at once; return {side: log path} of the sides that failed."""
    running = {}
    for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
        log = os.path.join(args.workdir, f"side_{side}.log")
        command = _module_command(python, "alignment.side", side, "--steps", ",".join(steps), "--dtypes",
                                  ",".join(dtypes), "--bit", args.bit, "--workdir", args.workdir,
                                  "--threads", args.threads, "--mask-seed", args.seed)
        with open(log, "w", encoding="utf-8") as handle:
            running[side] = (subprocess.Popen(command, cwd=PROJECT_ROOT, env=_environment(), stdout=handle,
                                              stderr=subprocess.STDOUT), log)
    return {side: log for side, (process, log) in running.items() if process.wait()}


def _read_env(workdir, dtype):
    env = {}
    for side in ("torch", "paddle"):
        path = env_path(workdir, dtype, side)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                env[side] = json.load(handle)
    return env


def check(workdir, step, dtype, failed_sides):
    if failed_sides:
        note = "; ".join(f"{side} side failed, see {log}" for side, log in failed_sides.items())
        result = StepResult(step, dtype, [_failure("(side process)", (), note)])
    else:
        module = STEPS[step]
        result = check_step(step, dtype, load_values(side_values_path(workdir, dtype, step, "torch")),
                            load_values(side_values_path(workdir, dtype, step, "paddle")),
                            getattr(module, "CODE_KEYS", None), getattr(module, "INVARIANTS", ()))
    write_reports(result, _read_env(workdir, dtype), *diff_paths(workdir, dtype, step))
    return result


ROUNDING_HINT = ("float32 only, float64 agrees: likely a ReLU or max-pool decision flipped by rounding"
                 " (README, Tolerances)")


def _hint(result, passed_in_float64):
    if not result.passed and result.dtype == "float32" and result.step in passed_in_float64:
        return ROUNDING_HINT
    return result.worst().note


def summary_rows(results):
    passed_in_float64 = {result.step for result in results if result.dtype == "float64" and result.passed}
    rows = []
    for result in results:
        worst = result.worst()
        rows.append({"step": result.step, "dtype": result.dtype, "passed": result.passed,
                     "worst_key": worst.name, "max_abs": worst.max_abs, "max_rel": worst.max_rel,
                     "limit": worst.limit, "note": _hint(result, passed_in_float64)})
    return rows


def format_table(rows):
    header = f"{'step':<10} {'dtype':<8} {'verdict':<7} {'worst key':<34} {'max abs':>10} {'max rel':>10} {'limit':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['step']:<10} {row['dtype']:<8} {'pass' if row['passed'] else 'FAIL':<7} "
                     f"{row['worst_key'][:34]:<34} {row['max_abs']:>10.3g} {row['max_rel']:>10.3g} "
                     f"{row['limit']:>10.3g}" + (f"  {row['note']}" if row["note"] else ""))
    return "\n".join(lines)


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    steps = _split_choice(args.steps, tuple(STEPS), "steps")
    dtypes = _split_choice(args.dtypes, DTYPES, "dtypes")
    args.workdir = os.path.abspath(args.workdir)
    prepare(args)
    failed_sides = run_sides(args, steps, dtypes)
    results = [check(args.workdir, step, dtype, failed_sides) for dtype in dtypes for step in steps]
    rows = summary_rows(results)
    passed = all(row["passed"] for row in rows)
    write_text(os.path.join(args.workdir, "summary.json"),
               json.dumps({"passed": passed, "steps": rows}, indent=2, default=str) + "\n")
    print(format_table(rows))
    print(f"alignment {'passed' if passed else 'FAILED'}: {sum(r['passed'] for r in rows)}/{len(rows)} checks;"
          f" details in {args.workdir}")
    sys.exit(0 if passed else 1)
