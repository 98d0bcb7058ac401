"""The first run on a GPU machine, in one command and one report (`make gpu-report`).

  python -m tools.gpu_report [--paddle-python .venv-gpu/bin/python] [--workdir logs/gpu-env/report]
                             [--device auto|gpu] [--bit 48] [--size 224] [--data PATH]

Runs, each part in its own processes (torch in this interpreter, Paddle in --paddle-python), and writes
<workdir>/gpu_report.md and gpu_report.json:

- versions: driver (nvidia-smi), each framework's version, the CUDA and cuDNN it was built with, its GPUs;
- libraries: where Paddle's own loaders find each CUDA library (tools.gpu_libraries);
- gpu-check: forward and backward on the GPU in both frameworks against the CPU float64 reference
  (tools.gpu_check; without a GPU its CPU path, said so);
- determinism (GPU): two float32 runs with the deterministic flags must be bit-identical; what differs
  between two runs with the defaults; TF32 allowed against TF32 off, each against the float64 reference;
- throughput (GPU): the training step of both frameworks side by side, images/s, the same batch and
  precision (benchmarks.worker, train, float32);
- epoch (GPU): one epoch of training with evaluation (mAP) in each framework;
- data parallel (GPU, two or more): one epoch with paddle.distributed.launch over two GPUs (NCCL).

What cannot run is listed as not run, with the reason. --device gpu: exits 2 with one line when a
framework sees no GPU, instead of running on the CPU. Exits 1 if a part that ran failed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from alignment.reprod_format import load_values
from greedyhash_common.app.cli_options import RUN_HISTORY_NAME
from greedyhash_common.hyperparameters import BATCH_SIZE, IMAGE_SIZE
from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.infra.workdir_lock import holding_workdir
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command

from . import gpu_libraries
from .gpu_check import RunVerdict, compare
from .gpu_check_worker import run_path as gpu_check_run_path
from .gpu_report_worker import DEFAULT_RUNS, DETERMINISTIC_RUNS, run_path

FRAMEWORKS = ("torch", "paddle")
THROUGHPUT_STEPS = {"--warm-up": 5, "--repeats": 20}
CPU_PATH_SIZE = 64  # AlexNet's smallest input: without a GPU, gpu-check only tests its own path


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m tools.gpu_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paddle-python", default=sys.executable, help="the Paddle environment's interpreter")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs", "gpu-env", "report"))
    parser.add_argument("--device", choices=("auto", "gpu"), default="auto",
                        help="gpu: refuse to run when a framework sees no GPU")
    parser.add_argument("--bit", type=int, default=48)
    parser.add_argument("--size", type=int, help=f"of gpu-check's images (default {IMAGE_SIZE} on a GPU; without "
                                                 f"one {CPU_PATH_SIZE}: its CPU path tests the check, not a GPU)")
    parser.add_argument("--data", help="CIFAR-10 for the epoch; default: the built-in synthetic data")
    return parser


def not_run(reason):
    return {"status": "not run", "reason": reason}


def python_of(args, framework):
    return args.paddle_python if framework == "paddle" else sys.executable


def run(command, log, environment=None):
    """Runs `command` in the project folder, its output to `log`; (exit code, seconds)."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.run([str(part) for part in command], cwd=PROJECT_ROOT, stdout=handle,
                              stderr=subprocess.STDOUT, env=environment or child_environment()).returncode
    return code, round(time.perf_counter() - started, 1)


def tail(log, lines=5):
    with open(log, encoding="utf-8") as handle:
        return " | ".join(handle.read().strip().splitlines()[-lines:])


def driver_version():
    if shutil.which("nvidia-smi") is None:
        return "none: nvidia-smi not found"
    done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else \
        f"unknown: nvidia-smi says {(done.stderr or done.stdout).strip()[:200]}"


def versions(args):
    found = {"driver": driver_version()}
    for framework in FRAMEWORKS:
        output = os.path.join(args.workdir, f"versions_{framework}.json")
        log = os.path.join(args.workdir, f"versions_{framework}.log")
        code, _ = run(module_command(python_of(args, framework), "tools.gpu_report_worker", "versions", framework,
                                     "--output", output), log)
        if code:
            raise UserInputError(f"{framework} does not start: {tail(log)}")
        with open(output, encoding="utf-8") as handle:
            found[framework] = json.load(handle)
    return {"status": "measured", **found}


def gpu_count(found):
    return min(len(found[framework]["gpus"]) for framework in FRAMEWORKS)


def libraries(args, found):
    if found["paddle"]["cuda"] in (None, "False"):
        return not_run(f"Paddle {found['paddle']['version']} in {args.paddle_python} is a CPU build")
    survey = gpu_libraries.survey(args.paddle_python)
    return {"status": "passed" if survey["passed"] else "failed", **survey}


def gpu_check(args, on_gpu):
    workdir = os.path.join(args.workdir, "gpu-check")
    log = os.path.join(args.workdir, "gpu_check.log")
    code, seconds = run(module_command(sys.executable, "tools.gpu_check", "--paddle-python", args.paddle_python,
                                       "--workdir", workdir, "--bit", args.bit, "--size",
                                       args.size or (IMAGE_SIZE if on_gpu else CPU_PATH_SIZE), "--device",
                                       "gpu" if on_gpu else "cpu", *(["--data", args.data] if args.data else [])), log)
    result_file = os.path.join(workdir, "gpu_check.json")
    if code not in (0, 1) or not os.path.isfile(result_file):
        return {"status": "failed", "seconds": seconds, "reason": tail(log)}
    with open(result_file, encoding="utf-8") as handle:
        result = json.load(handle)
    note = None if on_gpu else (f"no GPU: the device runs ran on the CPU, {args.size or CPU_PATH_SIZE} px "
                                "(this check's own path, not a GPU test)")
    return {"status": "passed" if result["passed"] else "failed", "seconds": seconds, "runs": result["runs"],
            "note": note}


def bitwise_differences(first, second):
    """{key: max abs difference} of the values of two runs that are not bit-identical (every key of both)."""
    differing = {}
    for key in sorted(set(first) | set(second)):
        if key not in first or key not in second:
            differing[key] = "only in one run"
        elif first[key].shape != second[key].shape or not np.array_equal(first[key], second[key]):
            differing[key] = float(np.max(np.abs(first[key].astype(np.float64) - second[key].astype(np.float64))))
    return differing


def worst_against_reference(reference, values):
    """The float32 run's outputs and losses against the CPU float64 reference: the worst key, its relative error."""
    results = compare(reference, values, "float32", ("forward", "loss"))
    worst = max(results, key=lambda result: result.max_rel)
    return {"key": worst.name, "max_rel": worst.max_rel, "within_float32_limits": all(r.passed for r in results)}


def determinism(args, on_gpu, device="gpu"):
    if not on_gpu:
        return not_run("no GPU (the CPU's kernels are deterministic: nothing to learn)")
    workdir = os.path.join(args.workdir, "gpu-check")
    reference = load_values(gpu_check_run_path(workdir, "torch", "cpu", "float64"))
    rows = {}
    for framework in FRAMEWORKS:
        command = module_command(python_of(args, framework), "tools.gpu_report_worker", "determinism", framework,
                                 "--workdir", workdir, "--bit", args.bit, "--device", device)
        log = os.path.join(args.workdir, f"determinism_{framework}.log")
        # cuBLAS is deterministic only with a fixed workspace (torch refuses its deterministic mode without it)
        code, seconds = run(command, log,
                            child_environment(NVIDIA_TF32_OVERRIDE="0", CUBLAS_WORKSPACE_CONFIG=":4096:8"))
        tf32_code, tf32_seconds = run([*command, "--tf32"], log + ".tf32", child_environment())
        if code or tf32_code:
            rows[framework] = {"passed": False, "reason": tail(log if code else log + ".tf32")}
            continue
        runs = {name: load_values(run_path(workdir, framework, name)) for name in
                DEFAULT_RUNS + DETERMINISTIC_RUNS + ("tf32",)}
        deterministic = bitwise_differences(*(runs[name] for name in DETERMINISTIC_RUNS))
        rows[framework] = {"passed": not deterministic, "seconds": seconds + tf32_seconds,
                           "deterministic_runs_differ": deterministic,
                           "default_runs_differ": bitwise_differences(*(runs[name] for name in DEFAULT_RUNS)),
                           "tf32_off": worst_against_reference(reference, runs[DETERMINISTIC_RUNS[0]]),
                           "tf32_allowed": worst_against_reference(reference, runs["tf32"])}
    return {"status": "passed" if all(row["passed"] for row in rows.values()) else "failed", "frameworks": rows}


def throughput(args, on_gpu, device="gpu", batch_size=BATCH_SIZE, image_size=IMAGE_SIZE, steps=None):
    if not on_gpu:
        return not_run("no GPU (the CPU's speed: make bench)")
    rows = {}
    for framework in FRAMEWORKS:
        output = os.path.join(args.workdir, f"throughput_{framework}.json")
        options = [value for pair in (steps or THROUGHPUT_STEPS).items() for value in pair]
        log = os.path.join(args.workdir, f"throughput_{framework}.log")
        code, _ = run(module_command(python_of(args, framework), "benchmarks.worker", framework, "train", "dynamic",
                                     "--output", output, "--device", device, "--batch-size", batch_size,
                                     "--image-size", image_size, "--bit", args.bit, *options), log)
        if code:
            rows[framework] = {"passed": False, "reason": tail(log)}
            continue
        with open(output, encoding="utf-8") as handle:
            measured = json.load(handle)
        on_device = device == "cpu" or measured["env"]["device"] != "cpu"  # a silent fall-back to the CPU fails
        rows[framework] = {"passed": on_device, "images_per_second": measured["images_per_second"]["median"],
                           "device": measured["env"]["device"]}
    return {"status": "measured" if all(row["passed"] for row in rows.values()) else "failed",
            "batch_size": batch_size, "image_size": image_size, "precision": "float32", "frameworks": rows}


def train_command(args, framework, output_dir, device="gpu", extra=()):
    return module_command(python_of(args, framework), f"{framework}_impl.train", "--device", device, "--epochs", 1,
                          "--bit", args.bit, "--output-dir", output_dir, *(["--data", args.data] if args.data else []),
                          *extra)


def epoch_result(output_dir, code, seconds, log):
    history_file = os.path.join(output_dir, RUN_HISTORY_NAME)
    if code or not os.path.isfile(history_file):
        return {"passed": False, "seconds": seconds, "reason": tail(log)}
    with open(history_file, encoding="utf-8") as handle:
        last = json.load(handle)[-1]
    return {"passed": np.isfinite(last["loss"]) and "map" in last, "seconds": seconds, "loss": last["loss"],
            "map": last.get("map")}


def epoch(args, on_gpu, device="gpu", extra=()):
    if not on_gpu:
        return not_run("no GPU (the CPU's training chain: make lite)")
    rows = {}
    for framework in FRAMEWORKS:
        output_dir = os.path.join(args.workdir, "epoch", framework)
        log = os.path.join(args.workdir, f"epoch_{framework}.log")
        code, seconds = run(train_command(args, framework, output_dir, device, extra), log)
        rows[framework] = epoch_result(output_dir, code, seconds, log)
    return {"status": "passed" if all(row["passed"] for row in rows.values()) else "failed", "frameworks": rows}


def data_parallel(args, gpus):
    if gpus < 2:
        return not_run(f"needs two GPUs; {gpus} visible")
    output_dir = os.path.join(args.workdir, "data-parallel")
    log = os.path.join(args.workdir, "data_parallel.log")
    launch = [args.paddle_python, "-m", "paddle.distributed.launch", "--devices", "0,1", "--log_dir",
              os.path.join(output_dir, "launch")]
    code, seconds = run(launch + train_command(args, "paddle", output_dir), log)
    row = epoch_result(output_dir, code, seconds, log)
    return {"status": "passed" if row["passed"] else "failed", "backend": "NCCL", **row}


ALIGNMENT_NOT_RUN = ("the alignment suite runs both of its sides on the CPU (alignment/ has no device option); "
                     "make align-gpu runs it with the Paddle side in .venv-gpu, on the CPU")


def report(args):
    found = versions(args)
    gpus = gpu_count(found)
    if args.device == "gpu" and gpus == 0:
        blind = [framework for framework in FRAMEWORKS if not found[framework]["gpus"]]
        raise UserInputError(f"--device gpu: {' and '.join(blind)} see(s) no GPU (driver: {found['driver']})")
    on_gpu = gpus > 0
    parts = {"versions": found, "libraries": libraries(args, found), "gpu_check": gpu_check(args, on_gpu),
             "alignment": not_run(ALIGNMENT_NOT_RUN), "determinism": determinism(args, on_gpu),
             "throughput": throughput(args, on_gpu), "epoch": epoch(args, on_gpu),
             "data_parallel": data_parallel(args, gpus)}
    return {"on_gpu": on_gpu, "passed": all(part["status"] != "failed" for part in parts.values()), "parts": parts}


def status_line(name, part):
    detail = part.get("reason") or part.get("note") or ""
    return f"- {name}: {part['status']}{': ' + detail if detail else ''}"


def markdown(result):
    parts = result["parts"]
    found = parts["versions"]
    lines = ["# GPU report", "", f"{'On the GPU' if result['on_gpu'] else 'No GPU: GPU parts not run'}; "
             f"{'no part failed' if result['passed'] else 'A PART FAILED'}.", "", "## Parts", ""]
    lines += [status_line(name, part) for name, part in parts.items()]
    lines += ["", "## Versions", "", f"- driver: {found['driver']}"]
    lines += [f"- {framework} {found[framework]['version']}: CUDA {found[framework]['cuda']}, cuDNN "
              f"{found[framework]['cudnn']}, GPUs: {', '.join(found[framework]['gpus']) or 'none'}"
              for framework in FRAMEWORKS]
    if "libraries" in parts["libraries"]:
        lines += ["", "## CUDA libraries (Paddle's loaders)", "", gpu_libraries.markdown(parts["libraries"])]
    if "runs" in parts["gpu_check"]:
        lines += ["", "## gpu-check", "", "| run | against | keys | passed | worst key | max rel |",
                  "| --- | --- | --- | --- | --- | --- |"]
        verdicts = [RunVerdict.from_json(entry) for entry in parts["gpu_check"]["runs"]]
        lines += [f"| {row.run} | {row.against} | {row.keys} | {row.passed} | {row.worst_key} | {row.max_rel:.2e} |"
                  for row in verdicts]
    for name in ("determinism", "throughput", "epoch", "data_parallel"):
        if parts[name]["status"] != "not run":
            lines += ["", f"## {name}", "", "```", json.dumps(parts[name], indent=2, default=str), "```"]
    return "\n".join(lines) + "\n"


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    args.workdir = os.path.abspath(args.workdir)
    with holding_workdir(args.workdir):
        result = report(args)
        write_text(os.path.join(args.workdir, "gpu_report.json"), json.dumps(result, indent=2, default=str) + "\n")
        text = markdown(result)
        write_text(os.path.join(args.workdir, "gpu_report.md"), text)
    print(text.split("## Versions")[0].rstrip())
    print(f"report: {args.workdir}/gpu_report.md and gpu_report.json")
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
