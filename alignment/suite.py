"""python -m alignment: run alignment steps on both frameworks, compare, report, and exit non-zero on failure.

The torch and Paddle sides run in two processes at once (one thread each by default, so two cores
are used); each may use its own interpreter (--torch-python, --paddle-python).
"""
import argparse
import json
import os
import subprocess
import sys
import time

from greedyhash_common.app.option_checks import check_alignment_options
from greedyhash_common.data.dataset import write_split
from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command

from . import coverage, diagnosis
from .cases import add_case_options, run_cases_of
from .check import StepResult, _failure, verdict_table, write_reports
from .inputs import write_input_batch
from .known_differences import evidence_of_run
from .layers.localize import DIRECTIONS, localize_files
from .pairs import DEFAULT_PAIR, PAIRS, pair_named
from .paths import coverage_path, diff_paths, env_path, inputs_dir, side_values_path, split_path
from .report import closing_line, terminal_summary, write_report
from .reprod_format import load_values
from .steps import check_values, runs_in, step_cases
from .weight_sets import USER

DTYPES = ("float32", "float64")
DEFAULT_BATCH_SIZE = 4


def add_run_options(parser):
    """The options of a run that the suite and the layer localization (alignment.layers) share."""
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--bit", type=int, default=48)
    parser.add_argument("--batch-size", type=int, help="images in the forward/loss/backward batch; default: the"
                        f" pair's (BATCH_SIZE), else {DEFAULT_BATCH_SIZE}")
    parser.add_argument("--data", help="the batch's data, CIFAR-10's folder or archive unless the pair brings its"
                        " own (alignment.inputs); default: the built-in synthetic data")
    parser.add_argument("--weights", help="a checkpoint of the pair (.pth or .pdparams), checked as one more weight set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization and dropout masks")
    parser.add_argument("--model", default=DEFAULT_PAIR,
                        help=f"the model pair: {', '.join(PAIRS)}, or an adapter module's dotted path (alignment.pairs)")
    parser.add_argument("--workdir", help="default: logs/, and logs/<model>/ for a pair other than the default")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each side")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--paddle-python", default=sys.executable)
    return add_case_options(parser)


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m alignment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", help="comma-separated, from the pair's steps; default: every one")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                        help="localize the first forward case even when it passes, for the report's divergence"
                             " profile (--no-profile: localize only failures, as the one-step targets do)")
    return add_run_options(parser)


def split_choice(value, allowed, what):
    chosen = value.split(",")
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise UserInputError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def prepare_weights(python, bit, seed, workdir, threads, weight_sets, weights=None, model=DEFAULT_PAIR):
    """The weight sets both sides start from, written by a torch process (see alignment.prepare_weights)."""
    command = module_command(python, "alignment.prepare_weights", "--bit", bit, "--seed", seed, "--workdir",
                              workdir, "--threads", threads, "--weight-sets", ",".join(weight_sets), "--model", model,
                              *(["--weights", weights] if weights else []))
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=child_environment(), capture_output=True, text=True)
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("error: ")
        raise UserInputError(f"preparing the weights failed: {reason}")
    print(done.stdout, end="", flush=True)  # which sets were reused


def with_pair_defaults(args):
    """`args` with what the pair decides where the user gave nothing: the steps, weight sets, sizes, batch
    size, folder."""
    pair = pair_named(args.model)
    if "steps" in args:
        args.steps = args.steps or ",".join(pair.STEPS)
    args.weight_sets = args.weight_sets or ",".join(pair.WEIGHT_SETS)
    args.sizes = args.sizes or ",".join(map(str, pair.DEFAULT_SIZES))
    if args.batch_size is None:
        args.batch_size = getattr(pair, "BATCH_SIZE", DEFAULT_BATCH_SIZE)
    args.workdir = args.workdir or os.path.join(PROJECT_ROOT, "logs", *([] if pair.NAME == DEFAULT_PAIR else [pair.NAME]))
    return args


def checked_options(args):
    """`args`, every option checked before any work (greedyhash_common.app.option_checks, and the weight sets)."""
    args = with_pair_defaults(args)
    check_alignment_options(args, getattr(pair_named(args.model), "SMALLEST_IMAGE_SIZE", None))
    split_choice(args.weight_sets, (*pair_named(args.model).WEIGHT_SETS, USER), "weight sets")
    if USER in args.weight_sets.split(",") and not args.weights:
        raise UserInputError(f"--weight-sets {USER}: give the checkpoint with --weights")
    return args


def with_user_weights(args):
    """The run's weight sets: those asked for, and the user's checkpoint when one is given."""
    if args.weights and USER not in args.weight_sets.split(","):
        args.weight_sets += "," + USER
    return args


def prepare(args):
    run_cases = run_cases_of(args)
    print(f"preparing the batch, the split and the weight sets ({', '.join(run_cases.weight_sets)}) in"
          f" {inputs_dir(args.workdir)}", flush=True)
    made = [weight_set for weight_set in run_cases.weight_sets if weight_set != USER]
    if args.weights:  # first: a bad --weights file is refused before anything else is written
        prepare_weights(args.torch_python, args.bit, args.seed, args.workdir, args.threads, [USER], args.weights,
                        args.model)
    write_input_batch(args.workdir, pair_named(args.model), args.data, args.batch_size,
                      (*run_cases.sizes, run_cases.bulk_size), run_cases.weight_sets)
    write_split(args.data, split_path(args.workdir))
    if made:  # the rescaled set is made on the batch just written
        prepare_weights(args.torch_python, args.bit, args.seed, args.workdir, args.threads, made, model=args.model)


def case_options(args):
    return ["--weight-sets", args.weight_sets, "--sizes", args.sizes, "--bulk-size", args.bulk_size, "--model",
            args.model]


def run_sides(args, steps, dtypes, log_prefix="side"):
    """Start both sides at once; return {side: log path} of the sides that failed."""
    running = {}
    for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
        log = os.path.join(args.workdir, f"{log_prefix}_{side}.log")
        command = module_command(python, "alignment.side", side, "--steps", ",".join(steps), "--dtypes",
                                  ",".join(dtypes), "--bit", args.bit, "--workdir", args.workdir,
                                  "--threads", args.threads, "--mask-seed", args.seed, *case_options(args),
                                  *(["--data", args.data] if args.data else []))
        with open(log, "w", encoding="utf-8") as handle:
            running[side] = (subprocess.Popen(command, cwd=PROJECT_ROOT, env=child_environment(), stdout=handle,
                                              stderr=subprocess.STDOUT), log)
    show_progress({log: process for process, log in running.values()})
    return {side: log for side, (process, log) in running.items() if process.wait()}


def _progress_lines(text):
    """The lines a side prints as each step finishes ("torch forward seeded-224px float32: 1.9 s"), not the
    frameworks' own messages."""
    return [line for line in text.splitlines() if line.startswith(("torch ", "paddle ")) and line.endswith(" s")]


def show_progress(processes, interval=0.1):
    """Print each side's finished steps, with the time since the start, until every process has ended."""
    started, offsets = time.perf_counter(), dict.fromkeys(processes, 0)
    while True:
        ended = all(process.poll() is not None for process in processes.values())
        for log in processes:
            with open(log, "rb") as handle:
                handle.seek(offsets[log])
                complete = handle.read()
            complete = complete[:complete.rfind(b"\n") + 1]
            offsets[log] += len(complete)
            for line in _progress_lines(complete.decode("utf-8", errors="replace")):
                print(f"[{time.perf_counter() - started:5.0f} s] {line}", flush=True)
        if ended:
            return
        time.sleep(interval)


def _read_env(workdir, dtype):
    env = {}
    for side in ("torch", "paddle"):
        path = env_path(workdir, dtype, side)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                env[side] = json.load(handle)
    return env


def check(workdir, step, case, dtype, failed_sides, pair):
    if failed_sides:
        note = "; ".join(f"{side} side failed, see {log}" for side, log in failed_sides.items())
        result = StepResult(step, dtype, [_failure("(side process)", (), note)])
    else:
        result = check_values(step, dtype, load_values(side_values_path(workdir, dtype, case, step, "torch")),
                              load_values(side_values_path(workdir, dtype, case, step, "paddle")), pair)
    result.case = case
    write_reports(result, _read_env(workdir, dtype), *diff_paths(workdir, dtype, case, step))
    return result


def float64_evidence(args, results, failed_sides):
    """The float64 checks the rounding rule needs and a float32-only run did not make
    (alignment.diagnosis.float64_checks_needed), run for that alone: their own logs, not verdicts of the run."""
    if failed_sides:
        return []
    evidence = []
    for case, steps in diagnosis.float64_checks_needed(results).items():
        print(f"float64 counterpart of the failing float32 {', '.join(steps)} {case.label}, for the rounding rule",
              flush=True)
        one_case = argparse.Namespace(**{**vars(args), "weight_sets": case.weights, "sizes": str(case.size)})
        failed = run_sides(one_case, steps, ["float64"], log_prefix="side_float64_evidence")
        evidence += [check(args.workdir, step, case, "float64", failed, pair_named(args.model)) for step in steps]
    return evidence


def run_layer_sides(args, dtypes, case):
    """Record every layer of one case, torch first: the Paddle side reads torch's record to pair its layers
    and to feed each of them torch's input. Return {side: log path} of a side that failed."""
    for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
        log = os.path.join(args.workdir, f"layers_{case.label}_{side}.log")
        command = module_command(python, "alignment.layers.side", side, "--case", case.label, "--dtypes",
                                  ",".join(dtypes), "--bit", args.bit, "--workdir", args.workdir, "--threads",
                                  args.threads, "--mask-seed", args.seed, "--model", args.model)
        with open(log, "w", encoding="utf-8") as handle:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=child_environment(), stdout=handle,
                                       stderr=subprocess.STDOUT)
        show_progress({log: process})
        if process.wait():
            return {side: log}
    return {}


def localize(args, dtypes, cases):
    """({(dtype, case): Localization}, {side: log path} of a layer side that failed)."""
    localizations = {}
    for case in cases:
        failed = run_layer_sides(args, dtypes, case)
        if failed:
            return localizations, failed
        localizations.update({(dtype, case): localize_files(args.workdir, dtype, case, pair_named(args.model))
                              for dtype in dtypes})
    return localizations, {}


def cases_to_localize(results, profile=True):
    """{case: [dtype]}: with `profile`, the first case of the forward step in every precision (the report's
    divergence profile); and every case and precision in which a step the layers explain (forward,
    backward) failed."""
    forward = [result for result in results if result.step == "forward"]
    chosen = {forward[0].case: list(dict.fromkeys(result.dtype for result in forward))} if forward and profile else {}
    for result in results:
        if not result.passed and result.step in DIRECTIONS and result.dtype not in chosen.setdefault(result.case, []):
            chosen[result.case].append(result.dtype)
    return chosen


def localize_cases(args, results, failed_sides):
    """Localize the cases_to_localize, unless a side process failed: then the layers would not run either."""
    if failed_sides:
        return {}, {}
    localizations = {}
    for case, dtypes in cases_to_localize(results, args.profile).items():
        found, failed = localize(args, dtypes, [case])
        localizations.update(found)
        if failed:
            return localizations, failed
    return localizations, {}


def read_coverage(workdir, results):
    """The coverage rows (alignment.coverage.merge) over every case the forward step ran in."""
    cases = dict.fromkeys(result.case for result in results if result.step == "forward")
    records = {}
    for case in cases:
        if os.path.exists(coverage_path(workdir, case)):
            with open(coverage_path(workdir, case), encoding="utf-8") as handle:
                records[case.label] = json.load(handle)
    return coverage.merge(records)


def run_settings(args):
    """The options of the run, for the report; not the paths that only describe this machine."""
    return {name: value for name, value in vars(args).items()
            if name not in ("workdir", "torch_python", "paddle_python")}


@exits_cleanly_on_bad_input
def main(argv=None):
    args = with_user_weights(checked_options(get_args_parser().parse_args(argv)))
    steps = split_choice(args.steps, pair_named(args.model).STEPS, "steps")
    dtypes = split_choice(args.dtypes, DTYPES, "dtypes")
    args.workdir = os.path.abspath(args.workdir)
    prepare(args)
    failed_sides = run_sides(args, steps, dtypes)
    run_cases = run_cases_of(args)
    results = [check(args.workdir, step, case, dtype, failed_sides, pair_named(args.model)) for dtype in dtypes
               for step in steps if runs_in(step, dtype, args.model)
               for case in step_cases(step, run_cases, dtype, args.model)]
    localizations, localization_failures = localize_cases(args, results, failed_sides)
    evidence = evidence_of_run(args.workdir, args.bit, pair_named(args.model).key_map())
    rows = diagnosis.verdicts(results, localizations, evidence, float64_evidence(args, results, failed_sides))
    coverage_rows = [] if failed_sides else read_coverage(args.workdir, results)
    passed = diagnosis.all_passed(rows)
    write_text(os.path.join(args.workdir, "summary.json"),
               json.dumps({"passed": passed, "steps": [row.as_json() for row in rows],
                           "not_covered": coverage.not_covered(coverage_rows)}, indent=2, default=str) + "\n")
    write_report(args.workdir, rows, {dtype: _read_env(args.workdir, dtype) for dtype in dtypes}, localizations,
                 localization_failures, run_settings(args), coverage_rows)
    print(verdict_table(rows, [("step", 10), ("case", 16), ("dtype", 8)]))
    print(terminal_summary(args.workdir, rows, localization_failures, coverage_rows))
    print(closing_line(rows, coverage_rows, args.workdir))
    sys.exit(0 if passed else 1)
