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
from greedyhash_common.option_checks import check_alignment_options

from .check import StepResult, _failure, check_step, write_reports
from greedyhash_common.dataset import write_split

from .inputs import write_input_batch
from .layers.localize import DIRECTIONS, localize_files
from .paths import diff_paths, env_path, side_values_path, split_path
from .report import terminal_summary, write_report
from .reprod_format import load_values
from .steps import BULK_IMAGE_SIZE, STEPS, runs_in

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = ("float32", "float64")


def add_run_options(parser):
    """The options of a run that the suite and the layer localization (alignment.layers) share."""
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--bit", type=int, default=48)
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="input height and width (224, or 64 for speed)")
    parser.add_argument("--batch-size", type=int, default=4, help="images in the forward/loss/backward batch")
    parser.add_argument("--data", help="CIFAR-10 folder or archive; default: the built-in synthetic data")
    parser.add_argument("--weights", help="GreedyHash checkpoint (.pth or .pdparams); default: seeded init")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization and dropout masks")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each side")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--paddle-python", default=sys.executable)
    return parser


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, from: {', '.join(STEPS)}")
    parser.add_argument("--bulk-size", type=int, default=BULK_IMAGE_SIZE,
                        help="image size of the steps that process many images (metric, train)")
    return add_run_options(parser)


def split_choice(value, allowed, what):
    chosen = value.split(",")
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise UserInputError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def module_command(python, module, *arguments):
    return [python, "-m", module, *map(str, arguments)]


def child_environment():
    """This environment, with the project importable from any interpreter (each side may have its own)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
    return env


def prepare_weights(python, bit, seed, workdir, threads, weights=None):
    """The weights both sides start from, written by a torch process (see alignment.prepare_weights)."""
    command = module_command(python, "alignment.prepare_weights", "--bit", bit, "--seed", seed, "--workdir",
                              workdir, "--threads", threads, *(["--weights", weights] if weights else []))
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=child_environment(), capture_output=True, text=True)
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("error: ")
        raise UserInputError(f"preparing the weights failed: {reason}")


def prepare(args):
    # The weights first: a bad --weights file is refused before anything else is written.
    prepare_weights(args.torch_python, args.bit, args.seed, args.workdir, args.threads, args.weights)
    write_input_batch(args.workdir, args.data, args.batch_size, args.size)
    write_split(args.data, split_path(args.workdir))


def run_sides(args, steps, dtypes):
    """Start both sides at once; return {side: log path} of the sides that failed."""
    running = {}
    for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
        log = os.path.join(args.workdir, f"side_{side}.log")
        command = module_command(python, "alignment.side", side, "--steps", ",".join(steps), "--dtypes",
                                  ",".join(dtypes), "--bit", args.bit, "--workdir", args.workdir,
                                  "--threads", args.threads, "--mask-seed", args.seed, "--size", args.size,
                                  "--bulk-size", args.bulk_size, *(["--data", args.data] if args.data else []))
        with open(log, "w", encoding="utf-8") as handle:
            running[side] = (subprocess.Popen(command, cwd=PROJECT_ROOT, env=child_environment(), stdout=handle,
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
ROUNDING_SHOWN = ("passed as rounding: float32 only, float64 agrees, and every Paddle layer agrees when fed"
                  " torch's values (a max-pool or ReLU decision flipped; see the localization)")


def explained_by_rounding(result, passed_in_float64, localizations):
    """A float32 forward or backward failure that float64 does not share and that no layer shows when
    each Paddle layer is fed torch's values: the port computes the same function, and float32
    rounding flipped a decision (a max-pool's maximum, a ReLU's sign) along the chain."""
    localization = localizations.get(result.dtype)
    return (not result.passed and result.dtype == "float32" and result.step in passed_in_float64
            and result.step in DIRECTIONS and localization is not None and not localization.paddle_only
            and all(not trace.isolated_failures() for trace in localization.traces_of(result.step)))


def summary_rows(results, localizations):
    passed_in_float64 = {result.step for result in results if result.dtype == "float64" and result.passed}
    rows = []
    for result in results:
        worst = result.worst()
        rounding = explained_by_rounding(result, passed_in_float64, localizations)
        rows.append({"step": result.step, "dtype": result.dtype, "passed": result.passed or rounding,
                     "worst_key": worst.name, "max_abs": worst.max_abs, "max_rel": worst.max_rel,
                     "limit": worst.limit, "note": _note(result, passed_in_float64, rounding)})
    return rows


def _note(result, passed_in_float64, rounding):
    if rounding:
        return ROUNDING_SHOWN
    if not result.passed and result.dtype == "float32" and result.step in passed_in_float64:
        return ROUNDING_HINT
    return result.worst().note


def format_table(rows):
    header = f"{'step':<10} {'dtype':<8} {'verdict':<7} {'worst key':<34} {'max abs':>10} {'max rel':>10} {'limit':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['step']:<10} {row['dtype']:<8} {'pass' if row['passed'] else 'FAIL':<7} "
                     f"{row['worst_key'][:34]:<34} {row['max_abs']:>10.3g} {row['max_rel']:>10.3g} "
                     f"{row['limit']:>10.3g}" + (f"  {row['note']}" if row["note"] else ""))
    return "\n".join(lines)


def run_layer_sides(args, dtypes):
    """Record every layer, torch first: the Paddle side reads torch's record to pair its layers and to
    feed each of them torch's input. Return {side: log path} of a side that failed."""
    for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
        log = os.path.join(args.workdir, f"layers_{side}.log")
        command = module_command(python, "alignment.layers.side", side, "--dtypes", ",".join(dtypes), "--bit",
                                  args.bit, "--workdir", args.workdir, "--threads", args.threads, "--mask-seed",
                                  args.seed)
        with open(log, "w", encoding="utf-8") as handle:
            if subprocess.run(command, cwd=PROJECT_ROOT, env=child_environment(), stdout=handle,
                              stderr=subprocess.STDOUT).returncode:
                return {side: log}
    return {}


def localize(args, dtypes):
    """({dtype: Localization}, {side: log path} of a layer side that failed)."""
    failed = run_layer_sides(args, dtypes)
    return ({} if failed else {dtype: localize_files(args.workdir, dtype) for dtype in dtypes}), failed


def localize_failures(args, results, failed_sides):
    """Localize every precision in which a step the layers explain (forward, backward) failed, unless a
    side process failed: then the layers would not run either."""
    dtypes = list(dict.fromkeys(result.dtype for result in results
                                if not result.passed and result.step in DIRECTIONS))
    return localize(args, dtypes) if dtypes and not failed_sides else ({}, {})


def run_settings(args):
    """The options of the run, for the report; not the paths that only describe this machine."""
    return {name: value for name, value in vars(args).items()
            if name not in ("workdir", "torch_python", "paddle_python")}


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_alignment_options(args)
    steps = split_choice(args.steps, tuple(STEPS), "steps")
    dtypes = split_choice(args.dtypes, DTYPES, "dtypes")
    args.workdir = os.path.abspath(args.workdir)
    prepare(args)
    failed_sides = run_sides(args, steps, dtypes)
    results = [check(args.workdir, step, dtype, failed_sides) for dtype in dtypes for step in steps
               if runs_in(step, dtype)]
    localizations, localization_failures = localize_failures(args, results, failed_sides)
    rows = summary_rows(results, localizations)
    passed = all(row["passed"] for row in rows)
    write_text(os.path.join(args.workdir, "summary.json"),
               json.dumps({"passed": passed, "steps": rows}, indent=2, default=str) + "\n")
    write_report(args.workdir, rows, {dtype: _read_env(args.workdir, dtype) for dtype in dtypes}, localizations,
                 localization_failures, run_settings(args))
    print(format_table(rows))
    print(terminal_summary(args.workdir, localizations, localization_failures))
    print(f"alignment {'passed' if passed else 'FAILED'}: {sum(r['passed'] for r in rows)}/{len(rows)} checks;"
          f" details in {args.workdir}")
    sys.exit(0 if passed else 1)
