"""The suite's orchestration: run the steps on both frameworks, check each, localize, diagnose and report.

Its public surface (__all__) is what the command line (alignment/__main__.py), the one-call API
(alignment.api), the layer tool (alignment.layers), the mutants (alignment.mutation), the curves
(alignment.pairs.greedyhash.curve) and the GPU check (tools.gpu_check) build on:

- the options: add_run_options, get_args_parser, resolved_options (the pair resolved, every option checked),
  with_pair_defaults, with_user_weights, split_choice, DTYPES;
- the work: prepare (the batch, the pair's inputs, the weight sets; prepare_weights in the torch
  interpreter), run_sides (both sides, each step checked as it arrives; check_streams reads two sides'
  streams, keep_arrays keeps what a user reads), localize, run_layer_sides and cases_to_localize (the
  layers; removable_layer_arrays and LAYER_RECORDS: what a compared case's records are), read_coverage;
  run (all of it, in a held work folder: the verdict rows, the localizations, the coverage rows);
- what a caller reads: SIDE_PROCESS (the key of a check a side never sent), REPROD_LOG_STEPS, PhaseClock,
  show_progress (a side's finished steps as they come).

Everything else here is this module's own.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time

from greedyhash_common.infra.atomic import remove_if_present, remove_temporary_files, write_text
from greedyhash_common.infra.child_processes import ending_together, run_child, start_child
from greedyhash_common.infra.errors import EXIT_BAD_INPUT, OneLineArgumentParser, UserInputError, child_failure
from greedyhash_common.infra.workdir_lock import holding_workdir
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command

from . import coverage, verdict
from .cases import add_case_options, run_cases_of
from .check import StepResult, failed_key, keys_compared, write_reports
from .inputs import write_input_batch
from .known_differences import evidence_of_run
from .layers.localize import CHAINED, DIRECTIONS, ISOLATED, localize_files
from .layers.worker import recorded_line, run as record_layers
from .pairs import DEFAULT_PAIR, PAIRS, pair_named
from .pairs.factories import FactoryPair, factory_spec
from .prepare_weights import prepare_weights as make_weights_here
from .option_checks import check_run_options
from .paths import (LAYOUTS, coverage_path, diff_paths, env_path, inputs_dir, layer_values_path, side_values_path,
                    weights_path, weights_stamp_path)
from .report import write_report
from .reprod_format import save_values
from .worker import run_steps, step_runs
from .sides import PORT, REFERENCE, configured_side, reusing_builds
from .steps import check_values, steps_of
from .streamed_values import BrokenStream, read_step, read_step_arrays
from .weight_sets import USER

__all__ = ["DTYPES", "LAYER_RECORDS", "REPROD_LOG_STEPS", "SIDE_PROCESS", "PhaseClock", "add_run_options",
           "cases_to_localize", "check_streams", "get_args_parser", "keep_arrays", "localize", "prepare",
           "prepare_weights", "read_coverage", "keeps_conversions", "removable_layer_arrays", "remove_conversions",
           "remove_interrupted_writes", "remove_weight_sets", "resolved_options", "run", "run_layer_sides",
           "run_sides", "show_progress", "split_choice", "with_pair_defaults", "with_user_weights"]

USAGE = """python -m alignment: run alignment steps on both frameworks, compare, report, and exit non-zero on failure.

  python -m alignment [--model NAME]                                 a pair (alignment.pairs)
  python -m alignment --torch MODULE:FACTORY --paddle MODULE:FACTORY  any two models, no pair written

The torch and Paddle sides run in two processes at once (one thread each by default, so two cores
are used); each may use its own interpreter (--torch-python, --paddle-python). Two factories given and
one interpreter for both: everything runs in this process (alignment.api.align does the same from Python).
"""
DTYPES = ("float32", "float64")
# The steps whose every array is kept as a reprod_log file (reprod_log's ReprodDiffHelper reads them);
# of the others, the keys that fail, unless --keep-arrays
REPROD_LOG_STEPS = ("forward", "loss")
SIDE_PROCESS = "(side process)"  # the key of a check that a side never sent


def add_run_options(parser):
    """The options of a run that the suite and the layer localization (alignment.layers) share."""
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--bit", type=int, help="the code length of a pair with codes (GreedyHash's: 48 by default)")
    parser.add_argument("--batch-size", type=int, help="images in the forward/loss/backward batch; default: the"
                        " pair's (BATCH_SIZE: alignment.pairs.base)")
    parser.add_argument("--data", help="the batch's data, CIFAR-10's folder or archive unless the pair brings its"
                        " own (alignment.inputs); default: the built-in synthetic data")
    parser.add_argument("--weights",
                        help="a checkpoint of the pair (.pth or .pdparams), checked as one more weight set")
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
    parser.add_argument("--keep-arrays", action="store_true",
                        help="keep every array of every step and layer on disk, not only those of failing keys,"
                             " and the weight sets' .pdparams conversions, which a run of every step removes"
                             " (alignment/paths.py)")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--paddle-python", default=sys.executable)
    return add_case_options(parser)


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment", description=USAGE,
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
    args.workdir = args.workdir or os.path.join(PROJECT_ROOT, "logs",
                                                *([] if pair.NAME == DEFAULT_PAIR else [pair.NAME]))
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
    check_run_options(args, pair)
    split_choice(args.weight_sets, pair.weight_set_names(), "weight sets")
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


def remove_interrupted_writes(workdir):
    """What a killed run's atomic writes left in the folders a run writes: inputs/ (a killed conversion's
    .pdparams: 437 MB for GreedyHash in float64) and each <dtype>/<case>/ (a killed layer side's record).
    Only a run that holds the workdir calls this: no other run is writing there. A folder that is a link
    is not followed: it may lead out of the workdir."""
    folders = [inputs_dir(workdir)]
    for dtype in (os.path.join(workdir, dtype) for dtype in DTYPES):
        if os.path.isdir(dtype) and not os.path.islink(dtype):
            folders += [entry.path for entry in os.scandir(dtype)]
    for folder in folders:
        if os.path.isdir(folder) and not os.path.islink(folder):
            remove_temporary_files(folder)


def prepare(args, pair):
    """(in a held workdir) The batch, the pair's own inputs and the weight sets, after what killed runs left."""
    remove_interrupted_writes(args.workdir)
    run_cases = run_cases_of(args, pair)
    print(f"preparing the batch, the pair's own inputs and the weight sets ({', '.join(run_cases.weight_sets)}) in"
          f" {inputs_dir(args.workdir)}", flush=True)
    made = [weight_set for weight_set in run_cases.weight_sets if weight_set != USER]
    if args.weights:  # first: a bad --weights file is refused before anything else is written
        make_weights(args, pair, [USER], args.weights)
    write_input_batch(args.workdir, pair, args.data, args.batch_size,
                      (*run_cases.sizes, run_cases.bulk_size), run_cases.weight_sets)
    pair.write_own_inputs(args.data, args.workdir)
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
    """Run both sides and check each step as soon as both have computed it (both sides at once in two
    processes, or one after the other in this one: args.in_process); return the StepResults in run order."""
    runs_args = argparse.Namespace(**{**vars(args), "steps": ",".join(steps), "dtypes": ",".join(dtypes),
                                      "mask_seed": args.seed})
    if args.in_process:
        return check_in_process(runs_args, pair)
    # a side that cannot start stops the other; Ctrl-C stops both
    with ending_together() as children, contextlib.ExitStack() as open_streams:
        running, streams = {}, {}
        for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
            log = os.path.join(args.workdir, f"{log_prefix}_{side}.log")
            process, stream = start_side(args, side, python, steps, dtypes, log)
            children.append(process)
            running[side], streams[side] = (process, log), open_streams.enter_context(stream)
        progress = threading.Thread(target=show_progress, args=({log: process for process, log in running.values()},),
                                    daemon=True)
        progress.start()
        results = check_streams(runs_args, pair, streams, {side: log for side, (_, log) in running.items()})
        open_streams.close()  # a side still writing (one that sent something else) ends on the closed pipe
        progress.join()
    refuse_what_a_side_refused(running)
    return results


def start_side(args, side, python, steps, dtypes, log):
    """(process, the read end of the pipe its values come through) of one side started; its output goes to
    its log."""
    read_end, write_end = os.pipe()
    command = module_command(python, "alignment.worker", side, "--steps", ",".join(steps), "--dtypes",
                              ",".join(dtypes), "--bit", args.bit, "--workdir", args.workdir,
                              "--threads", args.threads, "--mask-seed", args.seed, "--values-fd", write_end,
                              *case_options(args), *(["--data", args.data] if args.data else []))
    try:
        with open(log, "w", encoding="utf-8") as handle:
            process = start_child(command, f"--{side}-python", cwd=PROJECT_ROOT, env=child_environment(),
                                  stdout=handle, stderr=subprocess.STDOUT, pass_fds=(write_end,))
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)  # the side's copy is the only writer: its exit ends the stream
    return process, os.fdopen(read_end, "rb")


def check_streams(args, pair, streams, logs):
    """Read the two sides' step values in run order, check each step run, keep what a user reads; a side
    that ended or sent something else fails every check it has not sent. The reference's values of a step
    are read whole, the port's an array at a time, each compared as it comes (alignment.check.check_step)."""
    failed, results = {}, []
    for expected in step_runs(args, pair):
        values = {side: next_values(stream, side, expected, failed, logs) for side, stream in streams.items()}
        try:
            results.append(checked(args, pair, expected, values, failed))
        except BrokenStream as error:
            failed[PORT] = f"{PORT} side sent a broken message ({error}), see {logs[PORT]}"
            results.append(checked(args, pair, expected, {**values, PORT: None}, failed))
    return results


def next_values(stream, side, expected, failed, logs):
    """The side's values of the step run `expected` (dtype, step, case): the reference's {key: array}, the
    port's (key, array) pairs as they arrive; None once it has failed (noted in `failed` {side: why})."""
    if side in failed:
        return None
    try:
        message = read_step(stream) if side == REFERENCE else read_step_arrays(stream)
    except BrokenStream as error:
        message, failed[side] = None, f"{side} side sent a broken message ({error}), see {logs[side]}"
    if message is None:
        failed.setdefault(side, f"{side} side failed, see {logs[side]}")
        return None
    run, values = message
    dtype, step, case = expected
    if run != {"dtype": dtype, "step": step, "case": case.label}:
        failed[side] = f"{side} side sent {run} where {step} {case.label} {dtype} was due, see {logs[side]}"
        return None
    return values


def check_in_process(args, pair):
    """Both sides in this process, step run by step run: each side's values are checked and dropped before
    the next step runs."""
    sides = [configured_side(framework, args.threads, pair) for framework in (REFERENCE, PORT)]
    with contextlib.ExitStack() as builds:
        for side in sides:
            builds.enter_context(reusing_builds(side))
        runs = zip(*(run_steps(side, args, pair) for side in sides))
        return [checked(args, pair, (dtype, step, case), {REFERENCE: torch_values, PORT: paddle_values}, {})
                for (dtype, step, case, torch_values), (*_, paddle_values) in runs]


def checked(args, pair, run, values, failed):
    """The StepResult of one step run (dtype, step, case) from each side's values {side: values or None}
    (the port's a dict, or (key, array) pairs as they arrive); its reports written, and its arrays kept as
    alignment.paths describes."""
    dtype, step, case = run
    if failed:
        result = StepResult(step, dtype, [failed_key(SIDE_PROCESS, (), "; ".join(failed.values()))])
        values = {side: dict(side_values or {}) for side, side_values in values.items()}  # the port's read to its end
    else:
        port = dict(values[PORT]) if keeps_every_key(args, step) else values[PORT]
        kept = {}
        result = check_values(step, dtype, values[REFERENCE], port, pair, port_kept=kept)
        values = {REFERENCE: values[REFERENCE], PORT: port if isinstance(port, dict) else kept}
    result.case = case
    write_reports(result, _read_env(args.workdir, dtype), *diff_paths(args.workdir, dtype, case, step))
    keep_arrays(args, result, values)
    return result


def keeps_every_key(args, step):
    return args.keep_arrays or step in REPROD_LOG_STEPS


def keep_arrays(args, result, values):
    """Write each side's reprod_log file of the step run: every key of the reprod_log steps (and of every
    step with --keep-arrays), the keys a failure was found in otherwise; none when nothing is kept (an
    older run's file removed, so that no reader takes it for this run's)."""
    kept = None if keeps_every_key(args, result.step) else {key for row in result.keys if not row.passed
                                                            for key in keys_compared(row.name)}
    for side, side_values in values.items():
        path = side_values_path(args.workdir, result.dtype, result.case, result.step, side)
        chosen = {key: value for key, value in (side_values or {}).items() if kept is None or key in kept}
        if chosen:
            save_values(chosen, path)
        else:
            remove_if_present(path)


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


def float64_evidence(args, pair, results):
    """The float64 checks the rounding rule needs and a float32-only run did not make
    (alignment.verdict.float64_checks_needed), run for that alone: their own logs, not verdicts of the run."""
    if any(not key.passed and key.name == SIDE_PROCESS for result in results for key in result.keys):
        return []
    evidence = []
    for case, steps in verdict.float64_checks_needed(results).items():
        print(f"float64 counterpart of the failing float32 {', '.join(steps)} {case.label}, for the rounding rule",
              flush=True)
        one_case = argparse.Namespace(**{**vars(args), "weight_sets": case.weights, "sizes": str(case.size)})
        evidence += run_sides(one_case, pair, steps, ["float64"], log_prefix="side_float64_evidence")
    return evidence


def run_layer_sides(args, pair, runs, on_recorded=None):
    """Record every layer of each case of `runs` {case: [dtype]}, one process per side for them all (or this
    process: args.in_process): the Paddle side pairs each torch record, and feeds its layers torch's
    inputs, as soon as torch has written it, while torch records the next; on_recorded(case, dtype), here,
    as soon as the Paddle side has written its record of a case (while it records the next). Return {side:
    log path} of a side that failed."""
    if args.in_process:
        going_on = None if on_recorded is None else _going_on(on_recorded)
        for framework, named in ((REFERENCE, None), (PORT, going_on)):
            record_layers(framework, runs.items(), args.bit, args.workdir, args.threads, args.seed, pair, named)
        return {}
    cases = [f"{case.label}:{','.join(dtypes)}" for case, dtypes in runs.items()]
    logs = {side: os.path.join(args.workdir, f"layers_{side}.log") for side in ("torch", "paddle")}
    torch_names, torch_end = os.pipe()  # torch -> Paddle: each record's name once written
    paddle_names, paddle_end = os.pipe()  # Paddle -> this process: the same
    pipes = {"torch": {"--recorded-fd": torch_end},
             "paddle": {"--reference-fd": torch_names, "--recorded-fd": paddle_end}}
    errors, followed = [], []
    with ending_together() as children, os.fdopen(paddle_names, "rb") as names, \
            contextlib.ExitStack() as unclosed:
        for end in (torch_names, torch_end, paddle_end):
            unclosed.callback(os.close, end)
        for side, python in (("torch", args.torch_python), ("paddle", args.paddle_python)):
            command = module_command(python, "alignment.layers.worker", side, "--cases", *cases, "--bit", args.bit,
                                     "--workdir", args.workdir, "--threads", args.threads, "--mask-seed",
                                     args.seed, "--model", args.model,
                                     *(item for option, fd in pipes[side].items() for item in (option, fd)))
            with open(logs[side], "w", encoding="utf-8") as handle:
                children.append(start_child(command, f"--{side}-python", cwd=PROJECT_ROOT, env=child_environment(),
                                            stdout=handle, stderr=subprocess.STDOUT,
                                            pass_fds=tuple(pipes[side].values())))
        unclosed.close()  # the children's copies are the only ones: a side's exit ends its pipe for the reader
        follower = threading.Thread(target=_follow_records, args=(names, runs, on_recorded, followed, errors),
                                    daemon=True)
        follower.start()
        show_progress(dict(zip(logs.values(), children)))
        follower.join()
    if errors:
        raise errors[0]
    # torch's failure first: a Paddle side waiting for its records fails because of it
    failed = next(({side: logs[side]} for side, child in zip(logs, children) if child.wait()), {})
    unnamed = len(followed) < sum(len(dtypes) for dtypes in runs.values())
    return failed or ({"paddle": logs["paddle"]} if unnamed else {})


def _going_on(on_recorded):
    """on_recorded as a side's run calls it: it then goes on to the next record."""
    def called(case, dtype):
        on_recorded(case, dtype)
        return True
    return called


def _follow_records(stream, runs, on_recorded, followed, errors):
    """Call on_recorded(case, dtype) of each record the Paddle side names on `stream`, in the order of `runs`,
    and append it to `followed`, until the stream ends or names another (the side failed: a side that exits
    cleanly without naming every record fails the run all the same); an exception on_recorded raises is
    appended to `errors`, for the caller to raise."""
    try:
        for case, dtypes in runs.items():
            for dtype in dtypes:
                if stream.readline() != recorded_line(case, dtype):
                    return
                if on_recorded is not None:
                    on_recorded(case, dtype)
                followed.append((case, dtype))
    except BaseException as error:  # raised again by the caller's thread
        errors.append(error)


# Each (kind, side) of a case's layer records: chained and units run alone, torch's and Paddle's
LAYER_RECORDS = tuple((kind, side) for kind in (CHAINED, ISOLATED) for side in (REFERENCE, PORT))


def localize(args, pair, runs, results=None):
    """({(dtype, case): Localization}, {side: log path} of a layer side that failed) of each case of `runs`
    {case: [dtype]}, each compared while the Paddle side records the next. With the run's `results` (and no
    --keep-arrays), a case's arrays no later reader needs are removed once it is compared
    (removable_layer_arrays)."""
    localizations = {}

    def compare(case, dtype):
        localizations[(dtype, case)] = localize_files(args.workdir, dtype, case, pair)
        if results is not None and not args.keep_arrays:
            remove_layer_arrays(args.workdir, [(dtype, case)], removable_layer_arrays(results, case))

    failed = run_layer_sides(args, pair, runs, compare)
    return ({}, failed) if failed else (localizations, {})


def removable_layer_arrays(results, case):
    """[(kind, side)] of a case's layer records no reader needs once it is compared: Paddle's chained values
    (its layers run alone stay: the diagnosis feeds them to the known differences); every record of a case
    whose forward and backward checks all passed, in every precision (the diagnosis reads the records of
    a failing check, and the rounding rule those of its float64 counterpart)."""
    if any(not result.passed and result.step in DIRECTIONS and result.case == case for result in results):
        return [(CHAINED, PORT)]
    return LAYER_RECORDS


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


def localize_cases(args, pair, results, sides_failed):
    """Localize the cases_to_localize, unless a side process failed (then the layers would not run either) or
    the run asks for none (--no-localize)."""
    if sides_failed or not args.localize:
        return {}, {}
    runs = cases_to_localize(results, args.profile)
    return localize(args, pair, runs, results) if runs else ({}, {})


def float64_counterparts(results, localizations):
    """[case]: each whose float32 check failed in a direction the layers explain, whose float64 check of it
    passed, and whose float32 localization has layers that differ fed torch's values: the rounding rule
    compares those layers with float64's (alignment.verdict.structural_in_float64)."""
    passed_in_float64 = verdict.passed_in_float64(results)
    return list(dict.fromkeys(
        result.case for result in results
        if result.dtype == "float32" and not result.passed and result.step in DIRECTIONS
        and (result.step, result.case) in passed_in_float64 and ("float64", result.case) not in localizations
        and ("float32", result.case) in localizations
        and localizations[("float32", result.case)].differing_alone([result.step])))


def localize_float64_counterparts(args, pair, results, localizations):
    """Add the float64_counterparts' localizations to `localizations`; {side: log path} of a layer side that
    failed."""
    runs = {case: ["float64"] for case in float64_counterparts(results, localizations)}
    if not runs or not args.localize:
        return {}
    found, failed = localize(args, pair, runs, results)
    localizations.update(found)
    return failed


def read_coverage(workdir, results):
    """The coverage rows (alignment.coverage.merge) over every case the forward step ran in."""
    cases = dict.fromkeys(result.case for result in results if result.step == "forward")
    records = {}
    for case in cases:
        if os.path.exists(coverage_path(workdir, case)):
            with open(coverage_path(workdir, case), encoding="utf-8") as handle:
                records[case.label] = json.load(handle)
    return coverage.merge(records)


def remove_layer_arrays(workdir, localizations, records=LAYER_RECORDS):
    """The layer records' arrays, once localized (`records`: [(kind, side)], every one by default): their
    verdicts are in layers_localization.json."""
    for dtype, case in localizations:
        for kind, side in records:
            remove_if_present(layer_values_path(workdir, dtype, case, kind, side))


def keeps_conversions(args, pair, steps):
    """Whether a run keeps its weight sets' .pdparams: with --keep-arrays, and in a run of some of the pair's
    steps (`make align-forward` and the like: the edit loop, whose next run would otherwise convert them
    again: about 10 s for GreedyHash's, as long as the rest of its forward-only run)."""
    return args.keep_arrays or set(steps) != set(pair.STEPS)


def remove_conversions(workdir, bit, weight_sets):
    """The weight sets' .pdparams files, once a run of every step is over: in float64 the sets are most of
    what a run leaves on disk (GreedyHash: 437 MB a file), and the next run converts each from its .pth
    (alignment.prepare_weights), which takes part of the time making the set again would."""
    remove_weight_sets(workdir, bit, weight_sets, (".pdparams",))


def remove_weight_sets(workdir, bit, weight_sets, layouts=LAYOUTS):
    """The weight sets' files in `layouts` (default: both; alignment.align's own temporary folder, which no
    run reads again). The stamps go first: a file half removed is never taken for made."""
    for weight_set in weight_sets:
        stamps = [weights_stamp_path(workdir, bit, weight_set, suffix) for suffix in layouts]
        for path in (*stamps, *(weights_path(workdir, bit, weight_set, suffix) for suffix in layouts)):
            remove_if_present(path)


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


class PhaseClock:
    """The wall time of each phase of a run, in order: what `make bench` and a user read of its cost."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def phase(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 2)

    def __str__(self):
        return "time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())


def run_in_held_workdir(args, pair, steps, dtypes):
    """The run, in a work folder this process holds."""
    clock = PhaseClock()
    with clock.phase("prepare"):
        prepare(args, pair)
    with clock.phase("steps"):
        results = run_sides(args, pair, steps, dtypes)
    sides_failed = any(key.name == SIDE_PROCESS for result in results for key in result.keys)
    with clock.phase("localization"):
        localizations, localization_failures = localize_cases(args, pair, results, sides_failed)
        if not localization_failures and not sides_failed:
            localization_failures = localize_float64_counterparts(args, pair, results, localizations)
    with clock.phase("diagnosis"):
        evidence = evidence_of_run(args.workdir, args.bit, pair.key_map())
        rows = verdict.verdicts(results, localizations, evidence, float64_evidence(args, pair, results))
        coverage_rows = [] if sides_failed else read_coverage(args.workdir, results)
    with clock.phase("report"):
        write_report(args.workdir, rows, {dtype: _read_env(args.workdir, dtype) for dtype in dtypes}, localizations,
                     localization_failures, run_settings(args), coverage_rows, pair=pair)
    if not args.keep_arrays:
        remove_layer_arrays(args.workdir, localizations)
    if not keeps_conversions(args, pair, steps):
        remove_conversions(args.workdir, args.bit, args.weight_sets.split(","))
    write_text(os.path.join(args.workdir, "summary.json"),
               json.dumps({"passed": verdict.all_passed(rows), "steps": [row.as_json() for row in rows],
                           "not_covered": coverage.not_covered(coverage_rows), "seconds": clock.seconds},
                          indent=2, default=str) + "\n")
    print(clock, flush=True)
    return rows, localizations, localization_failures, coverage_rows

