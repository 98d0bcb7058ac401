"""The project's benchmark: torch and Paddle measured side by side, on this machine, in one run.

  python -m benchmarks [--output-dir logs] [--skip-align] [--quick] ...     (make bench)

Writes <output-dir>/bench.json (every figure, every run's seconds, each measurement's environment)
and <output-dir>/bench.md (the tables), each atomically. Measured:

- the training step (the project's train_step: forward, loss, backward, optimizer update) and
  inference (forward in eval mode, no gradients), images per second at batch 32, 224 px, float32:
  torch, Paddle's dynamic graph, Paddle's static graph (paddle_impl.static_model), and for inference
  also the Paddle Inference predictor that paddle_impl.infer runs; the ratio Paddle / torch;
- the evaluation pipeline on N images: the loader alone (reference loader, batched loader), the
  network alone (the project's `encode` on batches in memory), and `encode` end to end;
- mAP of 1,000 x 59,000 codes, 12 to 48 bits, against the references' per-query loop (map_speed);
- start-up: each side process's start (the framework's import and settings), and the one-step loop
  (`make align-forward`) in an empty folder and again with its weight sets reused;
- `make align`: its wall time, each step's time inside each side, and each step run alone with its
  wall time and peak memory.

Every throughput figure is the median of several timed runs after warm-up, with the slowest and the
fastest run, each measurement in a fresh process of its framework (its peak resident memory is its
own; both frameworks' runtimes set the same thread count). The 1-minute load average is recorded at
the start and end of each measurement: on a shared machine a figure taken under load is slower.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

from alignment.pairs.greedyhash import GREEDYHASH
from alignment.steps import steps_of
from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser
from greedyhash_common.project import PROJECT_ROOT, child_environment

from . import process_peak, timing
from .map_speed import markdown_table, measure_map_speed
from .worker import MEASUREMENTS, add_measurement_options

FRAMEWORKS = ("torch", "paddle")
ALIGN_STEPS = tuple(steps_of(GREEDYHASH))  # `make align`'s, the default pair's
# `make align` with every option at its Makefile default
MAKE_ALIGN_ARGS = ("--bit", "48", "--dtypes", "float32,float64")
SIDE_LOG_LINE = re.compile(r"^(torch|paddle) (\w+) (?:[\w-]+ )?(float32|float64): ([0-9.]+) s$")
QUICK_SETTINGS = {"batch_size": 2, "image_size": 64, "warm_up": 1, "repeats": 2, "images": 8, "eval_batch_size": 4,
                  "warm_up_passes": 0, "passes": 1, "map_bits": "12", "map_queries": 20, "map_database": 200,
                  "map_repeats": 1}


def measurement_plan(frameworks, items, variants=None):
    """[(framework, item, variant)], item by item so that the two frameworks are measured close in time;
    only `variants` when given."""
    return [(framework, item, variant) for item in items for framework in frameworks
            for variant in MEASUREMENTS[item][1][framework] if not variants or variant in variants]


def side_arguments(args):
    options = ("threads", "device", "bit", "batch_size", "image_size", "warm_up", "repeats", "images",
               "eval_batch_size", "loader_workers", "warm_up_passes", "passes")
    arguments = []
    for name in options:
        arguments += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return arguments


def run_measurement(framework, item, variant, args, folder):
    """One measurement in a fresh process; its result, or {"error": ...} when it failed."""
    output = os.path.join(folder, f"{framework}-{item}-{variant}.json")
    command = [sys.executable, "-m", "benchmarks.worker", framework, item, variant, "--output", output,
               *side_arguments(args)]
    with timing.OtherPrograms() as machine:
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=child_environment(), capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(output):
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"framework": framework, "item": item, "variant": variant, **machine.figures(),
                "error": f"exit status {done.returncode}: " + " | ".join(tail)}
    with open(output, encoding="utf-8") as handle:
        return {**json.load(handle), **machine.figures()}


def parse_side_logs(workdir):
    """{(framework, step, dtype): seconds, summed over the step's cases} from the suite's side_torch.log and
    side_paddle.log."""
    seconds = {}
    for framework in FRAMEWORKS:
        path = os.path.join(workdir, f"side_{framework}.log")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = SIDE_LOG_LINE.match(line.strip())
                if match:
                    key = (match.group(1), match.group(2), match.group(3))
                    seconds[key] = seconds.get(key, 0.0) + float(match.group(4))
    return seconds


def align_command(workdir, extra, steps=None):
    command = [sys.executable, "-m", "alignment", *MAKE_ALIGN_ARGS, "--workdir", workdir, *extra]
    return command + (["--steps", steps] if steps else [])


def measure_align(args, log_folder):
    """The whole suite once (as `make align` runs it), then each step alone."""
    extra = args.align_args.split() if args.align_args else []
    os.makedirs(log_folder, exist_ok=True)  # before the report: it is written last
    scratch = tempfile.mkdtemp(prefix="bench-align-")
    try:
        full_dir = os.path.join(scratch, "full")
        with timing.OtherPrograms() as machine:
            full = process_peak.measure(align_command(full_dir, extra), cwd=PROJECT_ROOT, env=child_environment(),
                                        log_path=os.path.join(log_folder, "bench-align.log"))
        step_seconds = parse_side_logs(full_dir)
        shutil.rmtree(full_dir, ignore_errors=True)  # a run writes gigabytes of float64 values: one at a time
        result = {"command": " ".join(["python -m alignment", *MAKE_ALIGN_ARGS, *extra]), **full,
                  **machine.figures(),
                  "side_step_seconds": [{"framework": framework, "step": step, "dtype": dtype, "seconds": value}
                                        for (framework, step, dtype), value in sorted(step_seconds.items())],
                  "steps_alone": []}
        if args.align_steps_alone:
            for step in ALIGN_STEPS:
                with timing.OtherPrograms() as machine:
                    alone = process_peak.measure(align_command(os.path.join(scratch, step), extra, step),
                                                 cwd=PROJECT_ROOT, env=child_environment(),
                                                 log_path=os.path.join(scratch, f"{step}.log"))
                result["steps_alone"].append({"step": step, **alone, **machine.figures()})
                shutil.rmtree(os.path.join(scratch, step), ignore_errors=True)
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


STARTUP_PROBE = ("from alignment.sides import configured_side; from alignment.pairs.greedyhash import GREEDYHASH;"
                 " configured_side({framework!r}, 1, GREEDYHASH)")
ONE_STEP = "forward"


def _wall_seconds(command, repeats, log_path):
    """Wall seconds of each of `repeats` runs of `command` (its messages appended to `log_path`); None for a
    run that failed."""
    seconds = []
    with open(log_path, "a", encoding="utf-8") as log:
        for _ in range(repeats):
            result = process_peak.run(command, cwd=PROJECT_ROOT, env=child_environment(), stdout=log, stderr=log)
            seconds.append(result["wall_seconds"] if result["returncode"] == 0 else None)
    return seconds


def spread_or_failure(seconds):
    return timing.spread(seconds) if None not in seconds else {"failed": True, "runs": len(seconds)}


def measure_startup(args, log_folder):
    """What a run pays before it computes: each side process's start (Python, the framework's import, its
    runtime settings: what `alignment.worker` does before its first step), and the one-step loop a user
    repeats while debugging (`python -m alignment --steps forward --no-profile`, as `make align-forward`),
    first in an empty folder, then again with the weight sets reused."""
    result = {"repeats": args.startup_repeats, "sides": {}, "one_step": {}}
    os.makedirs(log_folder, exist_ok=True)  # before the report: it is written last
    log_path = os.path.join(log_folder, "bench-startup.log")
    for framework in FRAMEWORKS:
        with timing.OtherPrograms() as machine:
            seconds = _wall_seconds([sys.executable, "-c", STARTUP_PROBE.format(framework=framework)],
                                    args.startup_repeats, log_path)
        result["sides"][framework] = {**spread_or_failure(seconds), **machine.figures()}
    extra = args.align_args.split() if args.align_args else []
    scratch = tempfile.mkdtemp(prefix="bench-one-step-")
    try:
        command = align_command(scratch, [*extra, "--no-profile"], ONE_STEP)
        result["one_step"]["command"] = " ".join(["python -m alignment", *command[3:]]).replace(scratch, "DIR")
        with timing.OtherPrograms() as machine:
            first = _wall_seconds(command, 1, log_path)
        result["one_step"]["first"] = {**spread_or_failure(first), **machine.figures()}
        with timing.OtherPrograms() as machine:
            again = _wall_seconds(command, args.startup_repeats, log_path)
        result["one_step"]["again"] = {**spread_or_failure(again), **machine.figures()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def machine_description():
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), None)
    except OSError:
        pass
    return {"cpu": model or platform.processor() or "unknown", "cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version()}


def run_benchmark(args):
    started = datetime.datetime.now(datetime.timezone.utc)
    report = {"started": started.isoformat(timespec="seconds"), "machine": machine_description(),
              "settings": {name: getattr(args, name) for name in ("threads", "device", "bit", "batch_size",
                                                                  "image_size", "warm_up", "repeats", "images",
                                                                  "eval_batch_size", "loader_workers",
                                                                  "warm_up_passes", "passes")},
              "measurements": [], "map": None, "startup": None, "align": None}
    items = [item for item in args.items.split(",") if item]
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        variants = [variant for variant in args.variants.split(",") if variant]
        for framework, item, variant in measurement_plan(args.frameworks.split(","), items, variants):
            print(f"bench: {framework} {item} {variant} (load average {timing.load_average():.2f})", flush=True)
            report["measurements"].append(run_measurement(framework, item, variant, args, folder))
    if not args.skip_map:
        print("bench: mAP", flush=True)
        bits = tuple(int(bit) for bit in args.map_bits.split(","))
        with timing.OtherPrograms() as machine:
            results = measure_map_speed(bits, args.map_queries, args.map_database, args.map_repeats)
        report["map"] = {"results": results, **machine.figures()}
    if not args.skip_startup:
        print("bench: start-up", flush=True)
        report["startup"] = measure_startup(args, args.output_dir)
    if not args.skip_align:
        print("bench: make align", flush=True)
        report["align"] = measure_align(args, args.output_dir)
    report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return report


# ------------------------------------------------------------------------------------------ report
VENDOR_MKL = "MKL's vendor dispatch"
AVX2_MKL = "MKL's AVX2 kernels (mkl_avx2_on_amd)"
TRAIN_INFER_ROWS = (("train", "dynamic", f"training step: dynamic graph, {VENDOR_MKL} (before)"),
                    ("train", "dynamic+avx2", f"training step: dynamic graph, {AVX2_MKL} (the project's default)"),
                    ("train", "static+avx2", f"training step: Paddle static graph (to_static), {AVX2_MKL}"),
                    ("infer", "dynamic", f"inference: dynamic graph, {VENDOR_MKL} (before)"),
                    ("infer", "dynamic+avx2", f"inference: dynamic graph, {AVX2_MKL} (the project's default)"),
                    ("infer", "static+avx2", f"inference: Paddle static graph (to_static), {AVX2_MKL}"),
                    ("infer", "predictor", "inference: Paddle Inference predictor, oneDNN (paddle_impl.infer)"))
PIPELINE_ROWS = (("loader", "reference", "loader alone: reference loader (per image)"),
                 ("loader", "batched", "loader alone: batched loader (fast_data)"),
                 ("network", "dynamic", f"network alone (encode on batches in memory): {VENDOR_MKL}"),
                 ("network", "dynamic+avx2", f"network alone: {AVX2_MKL}"),
                 ("network", "static+avx2", f"network alone: Paddle static graph, {AVX2_MKL}"),
                 ("network", "predictor", "network alone: Paddle Inference predictor, oneDNN (InferenceEncoder)"),
                 ("encode", "reference", f"encode end to end: reference loader, {VENDOR_MKL} (before)"),
                 ("encode", "batched+avx2", f"encode end to end: batched loader, {AVX2_MKL} (the project's default)"),
                 ("encode", "batched+predictor", "encode end to end: batched loader, Paddle Inference predictor"))
TORCH_COUNTERPART = {"static+avx2": "dynamic+avx2", "predictor": "dynamic", "batched+avx2": "batched",
                     "batched+predictor": "batched"}


def find(measurements, framework, item, variant):
    return next((entry for entry in measurements if (entry["framework"], entry["item"], entry["variant"]) ==
                 (framework, item, variant)), None)


def _rate_cell(entry):
    if entry is None:
        return "-"
    if "error" in entry:
        return "failed"
    rate = entry["images_per_second"]
    return f"{rate['median']:.1f} ({rate['min']:.1f}-{rate['max']:.1f})"


def _load_cell(*entries):
    """"load before / other programs' cores" of one or more measurements (the worst of each)."""
    entries = [entry for entry in entries if entry]
    loads = [entry["load_average_before"] for entry in entries if entry.get("load_average_before") is not None]
    others = [entry["other_programs_cores"] for entry in entries if entry.get("other_programs_cores") is not None]
    if not loads and not others:
        return "-"
    return f"{max(loads):.2f} / {max(others):.2f}" if loads and others else f"{max(loads or others):.2f}"


def _memory_cell(*entries):
    return " / ".join(f"{entry['peak_rss_mb']:.0f}" if entry and "peak_rss_mb" in entry else "-" for entry in entries)


def ratio(paddle_entry, torch_entry):
    """Paddle's median images per second over torch's, or None."""
    if not paddle_entry or not torch_entry or "error" in paddle_entry or "error" in torch_entry:
        return None
    return paddle_entry["images_per_second"]["median"] / torch_entry["images_per_second"]["median"]


def _comparison_table(measurements, rows):
    lines = ["| measurement | torch img/s: median (min-max) | Paddle img/s: median (min-max) | Paddle / torch "
             "| peak RSS MB torch / Paddle | load before / other cores |",
             "|---|---:|---:|---:|---:|---:|"]
    for item, variant, label in rows:
        paddle_entry = find(measurements, "paddle", item, variant)
        torch_variant = TORCH_COUNTERPART.get(variant, variant)
        torch_entry = find(measurements, "torch", item, torch_variant)
        if paddle_entry is None and torch_entry is None:
            continue
        if torch_variant != variant:
            label += f" (torch: {torch_variant})"
        value = ratio(paddle_entry, torch_entry)
        lines.append(f"| {label} | {_rate_cell(torch_entry)} | {_rate_cell(paddle_entry)} | "
                     f"{'-' if value is None else f'{value:.2f}'} | {_memory_cell(torch_entry, paddle_entry)} | "
                     f"{_load_cell(torch_entry, paddle_entry)} |")
    return lines


def error_lines(measurements):
    return [f"- {entry['framework']} {entry['item']} {entry['variant']}: {entry['error']}"
            for entry in measurements if "error" in entry]


def align_lines(align):
    lines = [f"`{align['command']}`: exit status {align['returncode']}, wall {align['wall_seconds']:.0f} s, "
             f"peak memory {align['peak_tree_rss_mb']:.0f} MB summed over its processes "
             f"(largest process {align['peak_process_rss_mb']:.0f} MB); load before / other cores "
             f"{_load_cell(align)}.", ""]
    by_step = {}
    for entry in align["side_step_seconds"]:
        by_step.setdefault((entry["step"], entry["dtype"]), {})[entry["framework"]] = entry["seconds"]
    alone = {entry["step"]: entry for entry in align["steps_alone"]}
    lines += ["| step | dtype | torch side s | Paddle side s | step alone: wall s | step alone: peak MB, all "
              "processes / largest | load before / other cores |", "|---|---|---:|---:|---:|---:|---:|"]
    for step in ALIGN_STEPS:
        for dtype in ("float32", "float64"):
            sides = by_step.get((step, dtype))
            if not sides:
                continue
            first = dtype == "float32" or (step, "float32") not in by_step
            entry = alone.get(step) if first else None
            wall = memory = load = ""
            if entry and entry["wall_seconds"] is not None:
                wall = f"{entry['wall_seconds']:.0f}"
                memory = f"{entry['peak_tree_rss_mb']:.0f} / {entry['peak_process_rss_mb']:.0f}"
                load = _load_cell(entry)
            lines.append(f"| {step} | {dtype} | {sides.get('torch', float('nan')):.1f} "
                         f"| {sides.get('paddle', float('nan')):.1f} | {wall} | {memory} | {load} |")
    if alone:
        lines += ["", "A step alone runs `python -m alignment --steps STEP` with the same options (both precisions; "
                  "its wall time includes the suite's start: weights, inputs, both sides' imports)."]
    return lines


def seconds_cell(entry):
    if entry.get("failed"):
        return "failed"
    return f"{entry['median']:.1f} ({entry['min']:.1f}-{entry['max']:.1f})"


def startup_lines(startup):
    sides, one_step = startup["sides"], startup["one_step"]
    lines = [f"Median wall seconds of {startup['repeats']} runs (slowest-fastest).", "",
             "| what | torch s | Paddle s | load before / other cores |", "|---|---:|---:|---:|",
             f"| a side process's start: Python, the framework's import, its runtime settings | "
             f"{seconds_cell(sides['torch'])} | {seconds_cell(sides['paddle'])} | "
             f"{_load_cell(sides['torch'], sides['paddle'])} |", "",
             f"The one-step loop, `{one_step['command']}` (what `make align-forward` runs), both sides at once:", "",
             "| run | wall s | load before / other cores |", "|---|---:|---:|",
             f"| first, in an empty folder (makes the weight sets) | {seconds_cell(one_step['first'])} | "
             f"{_load_cell(one_step['first'])} |",
             f"| again (the weight sets reused) | {seconds_cell(one_step['again'])} | "
             f"{_load_cell(one_step['again'])} |"]
    return lines


def markdown_report(report):
    settings = report["settings"]
    measurements = report["measurements"]
    machine = report["machine"]
    lines = ["# Benchmark: torch and Paddle side by side", "",
             f"{report['started']} to {report.get('finished', '?')}; {machine['cpu']}, {machine['cores']} cores, "
             f"{settings['device']}; {settings['threads']} threads on both sides; float32; "
             f"GreedyHash {settings['bit']} bits.", "",
             "Every figure: median of the timed runs after warm-up, (slowest-fastest). Load before / other "
             "cores: the 1-minute load average when the measurement started (the benchmark's own previous "
             "measurement counts in it), and the cores other programs kept busy on average during it (the "
             "machine's CPU time minus the benchmark's, over the wall time): near 0, nothing competed. The "
             "worst of the row's measurements.", "",
             f"## Training and inference: batch {settings['batch_size']}, {settings['image_size']} px", "",
             f"{settings['warm_up']} warm-up steps, {settings['repeats']} timed steps.", ""]
    lines += _comparison_table(measurements, TRAIN_INFER_ROWS)
    lines += ["", f"## Evaluation pipeline: {settings['images']} images, batch {settings['eval_batch_size']}, "
              f"{settings['image_size']} px", "",
              f"{settings['warm_up_passes']} warm-up and {settings['passes']} timed passes over the images; loader "
              f"workers: {settings['loader_workers']}. The loader resizes 32 -> {settings['image_size']} with PIL, "
              f"converts and normalizes; `encode` runs the network in eval mode and takes the sign.", ""]
    lines += _comparison_table(measurements, PIPELINE_ROWS)
    errors = error_lines(measurements)
    if errors:
        lines += ["", "Failed measurements:", *errors]
    if report.get("map"):
        results = report["map"]["results"]
        lines += ["", f"## mAP: {results[0]['queries']:,} queries x {results[0]['database']:,} database codes", "",
                  "greedyhash_common.metric.hamming_map against the references' per-query loop "
                  f"(benchmarks/map_speed.py); load before / other cores {_load_cell(report['map'])}.", "",
                  markdown_table(results)]
    if report.get("startup"):
        lines += ["", "## Start-up", ""] + startup_lines(report["startup"])
    if report.get("align"):
        lines += ["", "## make align", ""] + align_lines(report["align"])
    return "\n".join(lines) + "\n"


def write_report(report, output_dir):
    os.makedirs(output_dir, exist_ok=True)
    json_path, markdown_path = os.path.join(output_dir, "bench.json"), os.path.join(output_dir, "bench.md")
    write_text(json_path, json.dumps(report, indent=2) + "\n")
    write_text(markdown_path, markdown_report(report))
    return json_path, markdown_path


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m benchmarks", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="logs", help="receives bench.json and bench.md")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--items", default=",".join(MEASUREMENTS), help=f"from {', '.join(MEASUREMENTS)}")
    parser.add_argument("--variants", default="", help="only these variants (e.g. dynamic,reference); default all")
    add_measurement_options(parser)
    parser.add_argument("--map-bits", default="12,24,32,48")
    parser.add_argument("--map-queries", type=int, default=1000)
    parser.add_argument("--map-database", type=int, default=59000)
    parser.add_argument("--map-repeats", type=int, default=3)
    parser.add_argument("--skip-map", action="store_true")
    parser.add_argument("--skip-align", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--startup-repeats", type=int, default=5, help="timed runs of each start-up measurement")
    parser.add_argument("--align-args", default="", help='more options for the suite, e.g. "--size 64"')
    parser.add_argument("--no-align-steps-alone", dest="align_steps_alone", action="store_false",
                        help="time the whole suite only, not each step in a run of its own")
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks that the benchmark runs, "
                        "measures nothing meaningful (no alignment run)")
    return parser


def main(argv=None):
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK_SETTINGS.items():
            setattr(args, name, value)
        args.skip_align = args.skip_startup = True
    report = run_benchmark(args)
    json_path, markdown_path = write_report(report, args.output_dir)
    print(markdown_report(report))
    print(f"written: {json_path}, {markdown_path}")
    failed = [entry for entry in report["measurements"] if "error" in entry]
    align_failed = report["align"] is not None and report["align"]["returncode"] != 0
    return 1 if failed or align_failed else 0


if __name__ == "__main__":
    sys.exit(main())
