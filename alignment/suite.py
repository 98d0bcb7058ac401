"""python -m alignment: run alignment steps on both frameworks, compare, report, and exit non-zero on failure.

  python -m alignment [--model NAME]                                 a pair (alignment.pairs)
  python -m alignment --torch MODULE:FACTORY --paddle MODULE:FACTORY  any two models, no pair written

The torch and Paddle sides run in two processes at once (one thread each by default, so two cores
are used); each may use its own interpreter (--torch-python, --paddle-python). Two factories given and
one interpreter for both: everything runs in this process (alignment.api.align does the same from Python).
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
from greedyhash_common.infra.child_processes import ending_together, run_child, start_child
from greedyhash_common.infra.errors import (EXIT_BAD_INPUT, OneLineArgumentParser, UserInputError, child_failure,
                                            exits_cleanly_on_bad_input)
from greedyhash_common.infra.workdir_lock import holding_workdir
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command

from . import coverage, diagnosis
from .cases import add_case_options, run_cases_of
from .check import StepResult, _failure, verdict_table, write_reports
from .inputs import write_input_batch
from .known_differences import evidence_of_run
from .layers.localize import DIRECTIONS, localize_files
from .layers.side import run as record_layers
from .pairs import DEFAULT_PAIR, PAIRS, pair_named
from .pairs.factories import FactoryPair, factory_spec
from .prepare_weights import prepare_weights as make_weights_here
from .paths import coverage_path, diff_paths, env_path, inputs_dir, side_values_path, split_path
from .report import closing_line, terminal_summary, write_report
from .reprod_format import load_values
from .side import run_steps
from .sides import PORT, REFERENCE, configured_side, reusing_builds
from .steps import check_values, runs_in, step_cases, steps_of
from .weight_sets import USER

DTYPES = ("float32", "float64")


def add_run_options(parser):
    """The options of a run that the suite and the layer localization (alignment.layers) share."""
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--bit", type=int, default=48)
    parser.add_argument("--batch-size", type=int, help="images in the forward/loss/backward batch; default: the"
                        " pair's (BATCH_SIZE: alignment.pairs.base)")
    parser.add_argument("--data", help="the batch's data, CIFAR-10's folder or archive unless the pair brings its"
                        " own (alignment.inputs); default: the built-in synthetic data")
    parser.add_argument("--weights", help="a checkpoint of the pair (.pth or .pdparams), checked as one more weight set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization and dropout masks")
    parser.add_argument("--model", default=DEFAULT_PAIR,
                        help=f"the model pair: {', '.join(PAIRS)}, or a ModelPair subclass as module:Class"
                             " (alignment.pairs)")
    parser.add_argument("--torch", help="MODULE:FACTORY of the torch model (with --paddle: no pair to write)")
    parser.add_argument("--paddle", help="MODULE:FACTORY of its Paddle port")
    parser.add_argument("--key-map", help="TORCH_KEY=PADDLE_KEY,... the pairs of keys the two trees cannot decide"
                        " (with --torch and --paddle; the error of an undecided key map names them)")
    parser.add_argument("--workdir", help="default: logs/, and logs/<model>/ for a pair other than the default")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each side")
    parser.add_argument("--keep-arrays", action="store_true", help="keep every array of every step on disk, not only those of failing keys")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--paddle-python", default=sys.executable)
    return add_case_options(parser)


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", help="comma-separated, from the pair's steps; default: every one")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                        help="localize the first forward case even when it passes, for the report's divergence"
                             " profile (--no-profile: localize only failures, as the one-step targets do)")
    parser.add_argument("--localize", action=argparse.BooleanOptionalAction, default=True,
                        help="localize every failing forward and backward case (--no-localize: the verdicts alone)")
    return add_run_options(parser)


def split_choice(value, allowed, what):
    chosen = value.split(",")
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise UserInputError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def prepare_weights(python, bit, seed, workdir, threads, weight_sets, model, weights=None):
    """The weight sets both sides start from, written by a torch process (see alignment.prepare_weights)."""
    run_torch_module(python, "the weights", "alignment.prepare_weights", "--bit", bit, "--seed", seed, "--workdir",
                     workdir, "--threads", threads, "--weight-sets", ",".join(weight_sets), "--model", model,
                     *(["--weights", weights] if weights else []))


def run_torch_module(python, what, module, *arguments):
    """Run `module` in the torch interpreter; its failure as one line; print its output."""
    command = module_command(python, module, *arguments)
    done = run_child(command, "--torch-python", cwd=PROJECT_ROOT, env=child_environment())
    if done.returncode:
        raise UserInputError(f"preparing {what} failed: {child_failure(done.returncode, done.stderr)}")
    print(done.stdout, end="", flush=True)  # which sets were reused


def with_pair_defaults(args, pair):
    """`args` with what the pair decides where the user gave nothing: the steps, weight sets, sizes, batch
    size, folder."""
    if "steps" in args:
        args.steps = args.steps or ",".join(pair.STEPS)
    args.weight_sets = args.weight_sets or ",".join(pair.WEIGHT_SETS)
    args.sizes = args.sizes or ",".join(map(str, pair.DEFAULT_SIZES))
    if args.batch_size is None:
        args.batch_size = pair.BATCH_SIZE
    args.workdir = args.workdir or os.path.join(PROJECT_ROOT, "logs", *([] if pair.NAME == DEFAULT_PAIR else [pair.NAME]))
    return args


def resolved_options(args):
    """(args, pair): the model pair resolved once (alignment.pairs.pair_named), and every option checked
    before any work (greedyhash_common.app.option_checks, and the weight sets)."""
    if args.torch or args.paddle or args.key_map:
        if not (args.torch and args.paddle):
            raise UserInputError("give both --torch MODULE:FACTORY and --paddle MODULE:FACTORY")
        args.model = factory_spec(args.torch, args.paddle, args.key_map)
    pair = pair_named(args.model)
    steps_of(pair)  # a step the pair names but nobody defines is refused now, not after the inputs are written
    args = with_pair_defaults(args, pair)
    # two factories and one interpreter for both: the sides, the weights and the layers run in this process
    args.in_process = isinstance(pair, FactoryPair) and args.torch_python == args.paddle_python
    check_alignment_options(args, pair.SMALLEST_IMAGE_SIZE)
    split_choice(args.weight_sets, (*pair.WEIGHT_SETS, USER), "weight sets")
    if USER in args.weight_sets.split(",") and not args.weights:
        raise UserInputError(f"--weight-sets {USER}: give the checkpoint with --weights")
    return args, pair


def with_user_weights(args):
    """The run's weight sets: those asked for, and the user's checkpoint when one is given."""
    if args.weights and USER not in args.weight_sets.split(","):
        args.weight_sets += "," + USER
    return args


def make_weights(args, pair, weight_sets, weights=None):
    """The weight sets, made in this process (args.in_process) or in the torch interpreter."""
    if args.in_process:
        made = make_weights_here(args.bit, args.seed, args.workdir, weight_sets, weights, args.threads, pair=pair)
        if len(made) < len(weight_sets):
            print(f"reused the weight sets {', '.join(set(weight_sets) - set(made))}: made from the same content"
                  " before", flush=True)
    else:
        prepare_weights(args.torch_python, args.bit, args.seed, args.workdir, args.threads, weight_sets, args.model,
                        weights)


def prepare(args, pair):
    run_cases = run_cases_of(args, pair)
    print(f"preparing the batch, the split and the weight sets ({', '.join(run_cases.weight_sets)}) in"
          f" {inputs_dir(args.workdir)}", flush=True)
    made = [weight_set for weight_set in run_cases.weight_sets if weight_set != USER]
    if args.weights:  # first: a bad --weights file is refused before anything else is written
        make_weights(args, pair, [USER], args.weights)
    write_input_batch(args.workdir, pair, args.data, args.batch_size,
                      (*run_cases.sizes, run_cases.bulk_size), run_cases.weight_sets)
    write_split(args.data, split_path(args.workdir))
    if made:  # the rescaled set is made on the batch just written
        make_weights(args, pair, made)
    if isinstance(pair, FactoryPair) and args.paddle_python != args.torch_python:
        # the Paddle interpreter may have no torch: it reads the key map the torch interpreter infers
        run_torch_module(args.torch_python, "the key map", "alignment.pairs.factories", "--model", args.model,
                         "--workdir", args.workdir)


def case_options(args):
    return ["--weight-sets", args.weight_sets, "--sizes", args.sizes, "--bulk-size", args.bulk_size, "--model",
            args.model]


def run_sides(args, pair, steps, dtypes, log_prefix="side"):
    """Start both sides at once (or run them in this process: args.in_process); return {side: log path} of
    the sides that failed."""
    if args.in_process:
        side_args = argparse.Namespace(**{**vars(args), "steps": ",".join(steps), "dtypes": ",".join(dtypes),
                                          "mask_seed": args.seed})
        for framework in (REFERENCE, PORT):
            side = configured_side(framework, args.threads, pair)
            with reusing_builds(side):
                run_steps(side, side_args, pair)
        return {}
    running = {}
    with ending_together() as children:  # a side that cannot start stops the other; Ctrl-C stops both
        for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
            log = os.path.join(args.workdir, f"{log_prefix}_{side}.log")
            command = module_command(python, "alignment.side", side, "--steps", ",".join(steps), "--dtypes",
                                      ",".join(dtypes), "--bit", args.bit, "--workdir", args.workdir,
                                      "--threads", args.threads, "--mask-seed", args.seed, *case_options(args),
                                      *(["--data", args.data] if args.data else []))
            with open(log, "w", encoding="utf-8") as handle:
                children.append(start_child(command, f"--{side}-python", cwd=PROJECT_ROOT, env=child_environment(),
                                            stdout=handle, stderr=subprocess.STDOUT))
            running[side] = (children[-1], log)
        show_progress({log: process for process, log in running.values()})
    refuse_what_a_side_refused(running)
    return {side: log for side, (process, log) in running.items() if process.wait()}


def refuse_what_a_side_refused(running):
    """A side that exits as on bad input (a full disk, a file it cannot read) ends the run with its one line:
    a verdict on the sides' values would judge values that were never written."""
    for side, (process, log) in running.items():
        if process.wait() == EXIT_BAD_INPUT:
            with open(log, encoding="utf-8", errors="replace") as handle:
                lines = [line for line in handle.read().splitlines() if line.strip()] or ["no message"]
            raise UserInputError(f"the {side} side stopped: {lines[-1].removeprefix('error: ')}")


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


def float64_evidence(args, pair, results, failed_sides):
    """The float64 checks the rounding rule needs and a float32-only run did not make
    (alignment.diagnosis.float64_checks_needed), run for that alone: their own logs, not verdicts of the run."""
    if failed_sides:
        return []
    evidence = []
    for case, steps in diagnosis.float64_checks_needed(results).items():
        print(f"float64 counterpart of the failing float32 {', '.join(steps)} {case.label}, for the rounding rule",
              flush=True)
        one_case = argparse.Namespace(**{**vars(args), "weight_sets": case.weights, "sizes": str(case.size)})
        failed = run_sides(one_case, pair, steps, ["float64"], log_prefix="side_float64_evidence")
        evidence += [check(args.workdir, step, case, "float64", failed, pair) for step in steps]
    return evidence


def run_layer_sides(args, pair, dtypes, case):
    """Record every layer of one case, torch first: the Paddle side reads torch's record to pair its layers
    and to feed each of them torch's input. Return {side: log path} of a side that failed."""
    if args.in_process:
        for framework in (REFERENCE, PORT):
            record_layers(framework, dtypes, case, args.bit, args.workdir, args.threads, args.seed, pair)
        return {}
    for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
        log = os.path.join(args.workdir, f"layers_{case.label}_{side}.log")
        command = module_command(python, "alignment.layers.side", side, "--case", case.label, "--dtypes",
                                  ",".join(dtypes), "--bit", args.bit, "--workdir", args.workdir, "--threads",
                                  args.threads, "--mask-seed", args.seed, "--model", args.model)
        with ending_together() as children, open(log, "w", encoding="utf-8") as handle:
            children.append(start_child(command, f"--{side}-python", cwd=PROJECT_ROOT, env=child_environment(),
                                        stdout=handle, stderr=subprocess.STDOUT))
            show_progress({log: children[0]})
        if children[0].wait():
            return {side: log}
    return {}


def localize(args, pair, dtypes, cases):
    """({(dtype, case): Localization}, {side: log path} of a layer side that failed)."""
    localizations = {}
    for case in cases:
        failed = run_layer_sides(args, pair, dtypes, case)
        if failed:
            return localizations, failed
        localizations.update({(dtype, case): localize_files(args.workdir, dtype, case, pair)
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


def localize_cases(args, pair, results, failed_sides):
    """Localize the cases_to_localize, unless a side process failed (then the layers would not run either) or
    the run asks for none (--no-localize)."""
    if failed_sides or not args.localize:
        return {}, {}
    localizations = {}
    for case, dtypes in cases_to_localize(results, args.profile).items():
        found, failed = localize(args, pair, dtypes, [case])
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


def run(args, pair):
    """Run every step of the run `args` describes on both sides, check, localize, write the summary and the
    report; return (rows, localizations, localization failures, coverage rows)."""
    steps = split_choice(args.steps, pair.STEPS, "steps")
    dtypes = split_choice(args.dtypes, DTYPES, "dtypes")
    args.workdir = os.path.abspath(args.workdir)
    with holding_workdir(args.workdir):
        return run_in_held_workdir(args, pair, steps, dtypes)


def run_in_held_workdir(args, pair, steps, dtypes):
    """The run, in a work folder this process holds."""
    prepare(args, pair)
    failed_sides = run_sides(args, pair, steps, dtypes)
    run_cases = run_cases_of(args, pair)
    results = [check(args.workdir, step, case, dtype, failed_sides, pair) for dtype in dtypes
               for step in steps if runs_in(step, dtype, pair)
               for case in step_cases(step, run_cases, dtype, pair)]
    localizations, localization_failures = localize_cases(args, pair, results, failed_sides)
    evidence = evidence_of_run(args.workdir, args.bit, pair.key_map())
    rows = diagnosis.verdicts(results, localizations, evidence, float64_evidence(args, pair, results, failed_sides))
    coverage_rows = [] if failed_sides else read_coverage(args.workdir, results)
    write_text(os.path.join(args.workdir, "summary.json"),
               json.dumps({"passed": diagnosis.all_passed(rows), "steps": [row.as_json() for row in rows],
                           "not_covered": coverage.not_covered(coverage_rows)}, indent=2, default=str) + "\n")
    write_report(args.workdir, rows, {dtype: _read_env(args.workdir, dtype) for dtype in dtypes}, localizations,
                 localization_failures, run_settings(args), coverage_rows, pair=pair)
    return rows, localizations, localization_failures, coverage_rows


@exits_cleanly_on_bad_input
def main(argv=None):
    from .api import Alignment  # the API builds on this module

    args, pair = resolved_options(get_args_parser().parse_args(argv))
    args = with_user_weights(args)
    alignment = Alignment(args.workdir, *run(args, pair))
    print(alignment)
    sys.exit(0 if alignment.passed else 1)
