"""This suite's layer localization and PaDiff side by side, on the same models and planted defects; and the
two tools' cost on one forward and backward.

  python -m benchmarks.padiff_comparison --padiff /tmp/padiff [--only table|speed] [--repeats 3]

PaDiff (padiff 0.2.0) must be installed in its own folder (`pip install --no-deps --target /tmp/padiff
padiff==0.2.0`): importing it wraps torch's and Paddle's functions for the whole process, and it writes
diff_log/ beside the script that runs it, so each of its runs is a fresh process started from a
folder of its own. Each (tool, case) runs in a fresh process: its wall time, peak resident memory
(wait4) and the bytes it wrote. PaDiff runs at its strictest (elementwise, atol 0, rtol 1e-7) on one
forward and backward in eval mode.

The table (docs/comparison_table.md): torchvision's and paddle.vision's MobileNetV2 (64 px) and SqueezeNet
1.1 (65 px), float64, the same weights, defects planted on the Paddle side (benchmarks/layer_tree_cases.py,
as tests/test_alignment_layer_trees.py checks them); this suite records eval and training mode.
The speed cases (docs/comparison_speed.md): torchvision's and paddle.vision's ResNet-18, 64 px, float64,
forward and backward, the suite through its one-call path (alignment.align, every check it makes by
default for those steps: both modes, buffers, each layer fed torch's inputs, coverage, the report), PaDiff on
the weights the suite checks, and a process that only imports the frameworks and builds the models (what
both include); they alternate, `--repeats` times each, with the load average around them (the machine may
be shared: both tools are measured in the same run).
Each writes its table (markdown) and the same as JSON beside it, atomically.
"""
import argparse
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser
from greedyhash_common.project import PROJECT_ROOT

# case: (pair, image size, plant in benchmarks.layer_tree_cases or None, what the planted defect is)
CASES = {
    "mobilenet_v2": ("MOBILENET_V2", 64, None, "none (library differences only)"),
    "mobilenet_v2 relu6->relu": ("MOBILENET_V2", 64, "relu_for_relu6", "features.3.conv.1.2: ReLU6 -> ReLU"),
    "mobilenet_v2 padding": ("MOBILENET_V2", 64, "padded_pointwise_convolution", "features.1.conv.1: padding 0 -> 1"),
    "mobilenet_v2 bn momentum": ("MOBILENET_V2", 64, "batch_norm_momentum",
                                 "features.5.conv.1.1: BatchNorm momentum 0.9 -> 0.5 (buffers only)"),
    "squeezenet1_1 corrected": ("SQUEEZENET", 65, "squeezenet_as_torchvision", "none (torchvision's choices)"),
    "squeezenet1_1 ceil_mode": ("SQUEEZENET", 65, "ceil_mode_off", "features.2 (_pool): ceil_mode True -> False"),
}
TOOLS = ("suite", "padiff")
# the speed cases' floor: a process that imports both frameworks and builds the two models, as each tool's does
FLOOR = "imports and models"
SPEED_TOOLS = (*TOOLS, FLOOR)
BUFFERS_TRACE = "buffers"
# speed case: (torchvision.models / paddle.vision.models architecture, image size, the suite's steps); float64
SPEED_CASES = {"resnet18 forward+backward": ("resnet18", 64, ("forward", "backward"))}
SPEED_DTYPE = "float64"
SPEED_RUNS = {
    "suite": "`alignment.align(torch_model, paddle_model, images, labels, steps=(\"forward\", \"backward\"),"
             " dtypes=(\"float64\",), sizes=(64,), profile=True)`: outputs and gradients in eval and training mode,"
             " BatchNorm buffers, every layer chained and fed torch's inputs in both modes, coverage, the report"
             " and its figure",
    "padiff": "`auto_diff` elementwise (atol 0, rtol 1e-7), eval mode: one forward and backward, layer by layer",
    FLOOR: "torch, torchvision and Paddle imported, the two models built, nothing checked: what both tools' runs"
           " include before their own work",
}


def _models(case):
    import torch

    from benchmarks import layer_tree_cases

    torch.set_num_threads(1)
    pair_name, size, plant_name, _ = CASES[case]
    pair = getattr(layer_tree_cases, pair_name)
    plant = getattr(layer_tree_cases, plant_name) if plant_name else None
    return pair_name, pair, plant, layer_tree_cases.batch(size)


def run_suite(case, folder):
    """This suite's localization, both sides in this process, records written to `folder`."""
    from alignment.layers.localize import compare_records
    from alignment.layers.worker import record_side
    from alignment.sides import paddle_layers, torch_layers
    from alignment.steps import StepContext

    pair_name, pair, plant, (images, labels) = _models(case)
    context = StepContext(12, "float64", None, images, labels, 0, pair=pair)
    paths = {side: (os.path.join(folder, f"{side}.npz"), os.path.join(folder, f"{side}_alone.npz"))
             for side in ("torch", "paddle")}
    reference, reference_alone = record_side(pair.torch_side(), torch_layers, context, {}, paths=paths["torch"])
    port, alone = record_side(pair.paddle_side(plant), paddle_layers, context, {}, reference, paths["paddle"])
    localization = compare_records("float64", reference, port, alone, pair=pair, reference_isolated=reference_alone)
    return {"passed": localization.passed, "names": _localization_names(localization)}


def _localization_names(localization, directions=("forward", BUFFERS_TRACE)):
    """{"<mode> <direction>": the layer where the trace's difference starts, its operator and source line}."""
    named = {}
    for trace in localization.traces:
        divergence = trace.divergence()
        if divergence and trace.direction in directions:
            row, _ = divergence
            named[f"{trace.mode} {trace.direction}"] = (f"{row.layer} ({row.types}{': ' + row.operator if row.operator else ''};"
                                                        f" {row.source})")
    return named


def run_padiff(case, folder):
    """PaDiff's auto_diff at its strictest on the same models and input; what it prints names the place."""
    _, pair, plant, (images, _) = _models(case)
    torch_model = pair.torch_side().build_model(0, "float64", None)
    paddle_model = pair.paddle_side(plant).build_model(0, "float64", None)
    return _auto_diff(torch_model, paddle_model, images)


def _speed_models(case):
    """(torchvision's model with seed 0's initialization, paddle.vision's untrained one, the batch)."""
    import paddle.vision
    import torch
    import torchvision

    from benchmarks.layer_tree_cases import NUM_CLASSES, batch

    torch.set_num_threads(1)
    arch, size, _ = SPEED_CASES[case]
    torch.manual_seed(0)
    return (getattr(torchvision.models, arch)(num_classes=NUM_CLASSES),
            getattr(paddle.vision.models, arch)(num_classes=NUM_CLASSES), batch(size))


def run_floor(case, folder):
    _speed_models(case)
    return {}


def run_suite_one_call(case, folder):
    """alignment.align on the speed case, as a user calls it: its verdicts and what its localization names."""
    import alignment
    from alignment.layers.localize import DIRECTIONS

    torch_model, paddle_model, (images, labels) = _speed_models(case)
    arch, size, steps = SPEED_CASES[case]
    result = alignment.align(torch_model, paddle_model, images, labels, steps=steps, dtypes=(SPEED_DTYPE,),
                             sizes=(size,), profile=True, name=arch, workdir=os.path.join(folder, "workdir"))
    names = {f"{row.step} {row.dtype}": f"{row.worst_key} ({row.kind})" for row in result.failures()}
    for localization in result.localizations.values():
        names.update(_localization_names(localization, (*DIRECTIONS, BUFFERS_TRACE)))
    return {"passed": result.passed, "names": names}


def run_padiff_speed(case, folder):
    """PaDiff's auto_diff at its strictest on the speed case's models with the weights the suite checks (its
    seeded set: torch's initialization, BatchNorm drawn, copied through the inferred key map)."""
    import torch

    from alignment.api import ModelsPair
    from weights_convert.convert import torch_to_paddle

    torch_model, paddle_model, (images, labels) = _speed_models(case)
    pair = ModelsPair(torch_model, paddle_model, SPEED_CASES[case][0], None, images, labels, None, None)
    state = pair.seeded_state(0)
    torch_model, paddle_model = pair.build("torch"), pair.build("paddle")
    torch_model.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()})
    paddle_model.set_state_dict(torch_to_paddle(state, "the seeded set", pair.layout())[0])
    torch_model, paddle_model = torch_model.to(getattr(torch, SPEED_DTYPE)).eval(), paddle_model.eval()
    paddle_model.to(dtype=SPEED_DTYPE)
    return _auto_diff(torch_model, paddle_model, images)


def _auto_diff(torch_model, paddle_model, images):
    """PaDiff's verdict at its strictest (elementwise, atol 0, rtol 1e-7) on one forward and backward. It
    wraps both frameworks' functions when imported: imported here, after the models are built."""
    import paddle
    import torch
    from padiff import auto_diff

    inputs = ({_input_name(paddle_model): paddle.to_tensor(images)}, {_input_name(torch_model): torch.from_numpy(images)})
    passed = auto_diff(paddle_model, torch_model, inputs, auto_weights=False,
                       options={"atol": 0, "rtol": 1e-7, "compare_mode": "strict"})
    return {"passed": bool(passed)}


def _input_name(model):
    """PaDiff calls model(**inputs): the name of the forward's first argument (`x`, Paddle SqueezeNet's `inputs`)."""
    return next(iter(inspect.signature(model.forward).parameters))


def _padiff_names(output):
    """The lines of PaDiff's output that name where it found a difference."""
    found = [line.split("]", 1)[1].strip() for line in output.splitlines()
             if line.startswith("[AutoDiff]") and ("Diff found" in line or "Type of layer" in line)]
    return "; ".join(found)


def _folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def measure(tool, case, padiff_path):
    """Run one (tool, case) in a fresh process started in a folder of its own; its figures. The folder is
    removed whatever happens."""
    folder = tempfile.mkdtemp(prefix="padiff-comparison-")
    try:
        return _measured_in(folder, tool, case, padiff_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measured_in(folder, tool, case, padiff_path):
    launcher = os.path.join(folder, "launch.py")
    write_text(launcher, "import runpy, sys\nsys.argv = ['padiff_comparison', '--child'] + sys.argv[1:]\n"
                         "runpy.run_module('benchmarks.padiff_comparison', run_name='__main__')\n")
    path = [str(PROJECT_ROOT)] + ([padiff_path] if tool == "padiff" else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), GLOG_minloglevel="2")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, launcher, tool, case, folder], cwd=folder, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    result_lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    os.remove(launcher)
    written = _folder_bytes(folder)
    result = json.loads(result_lines[-1][len("RESULT "):]) if result_lines else {"error": output[-2000:]}
    if tool == "padiff":
        result["names"] = _padiff_names(output)
    phases = [line.removeprefix("time: ") for line in output.splitlines() if line.startswith("time: ")]
    if phases:
        result["phases"] = phases[-1]  # the suite's own clock (alignment.suite.PhaseClock)
    result = json.loads(_without_machine_paths(json.dumps(result), folder))
    return {"tool": tool, "case": case, "seconds": round(seconds, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "peak_mb": round(usage.ru_maxrss / 1024),
            "written_bytes": written, "exit_status": os.waitstatus_to_exitcode(status), **result}


def _without_machine_paths(text, folder):
    """`text` with this checkout's and the run folder's paths made relative: the table is committed."""
    return text.replace(str(PROJECT_ROOT) + os.sep, "").replace(folder, "<run folder>")


def _cell(entry):
    if "error" in entry:
        return "error"
    if "passed" not in entry:
        return "(no verdict)"
    verdict = "passes" if entry["passed"] else "FAILS"
    names = entry["names"]
    if isinstance(names, dict):
        names = "; ".join(f"{where}: {what}" for where, what in names.items())
    return f"{verdict}" + (f": {names}" if names else "")


def _size(count):
    return f"{count / 1e6:.0f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"


def table(entries):
    lines = ["<!-- written by python -m benchmarks.padiff_comparison; do not edit -->",
             "| case (Paddle side) | planted | tool | verdict and what it names | s | peak MB | written |",
             "| --- | --- | --- | --- | ---: | ---: | ---: |"]
    for entry in entries:
        lines.append(f"| {entry['case']} | {CASES[entry['case']][3]} | {entry['tool']} | {_cell(entry)}"
                     f" | {entry['seconds']} | {entry['peak_mb']} | {_size(entry['written_bytes'])} |")
    return "\n".join(lines) + "\n"


def speed_table(entries, machine):
    """One row per case and tool: the median of its runs, every run's seconds, the largest peak memory."""
    lines = ["<!-- written by python -m benchmarks.padiff_comparison; do not edit -->",
             f"{machine['cores']} cores; load average {machine['load_average_before']} before the runs,"
             f" {machine['load_average_after']} after (1, 5, 15 minutes); each run a fresh process, the tools"
             " alternating. s: wall time, median of the runs (each run's in brackets); CPU s: user and system"
             " time, median.", "",
             "| case | tool | verdict and what it names | s | CPU s | peak MB | written |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for case in dict.fromkeys(entry["case"] for entry in entries):
        for tool in dict.fromkeys(entry["tool"] for entry in entries):
            runs = [entry for entry in entries if entry["case"] == case and entry["tool"] == tool]
            seconds = [entry["seconds"] for entry in runs]
            arch, size, steps = SPEED_CASES[case]
            lines.append(f"| {arch} {size} px {SPEED_DTYPE} {' + '.join(steps)} | {tool} | {_cell(runs[-1])}"
                         f" | {statistics.median(seconds)} ({', '.join(map(str, seconds))})"
                         f" | {statistics.median(entry['cpu_seconds'] for entry in runs)}"
                         f" | {max(entry['peak_mb'] for entry in runs)} | {_size(runs[-1]['written_bytes'])} |")
    lines += [""] + [f"- {tool}: {what}" for tool, what in SPEED_RUNS.items()]
    lines += [f"- the suite's phases (its own clock), {entry['case']}, last run: {entry['phases']}"
              for entry in entries if "phases" in entry][-1:]
    return "\n".join(lines) + "\n"


def _load_average():
    return [round(value, 1) for value in os.getloadavg()]


def measure_speed(cases, repeats, padiff_path):
    """The speed cases' entries, each tool `repeats` times, alternating; and the machine's load around them."""
    machine = {"cores": os.cpu_count(), "load_average_before": _load_average()}
    entries = [measure(tool, case, padiff_path) for case in cases for _ in range(repeats) for tool in SPEED_TOOLS]
    return entries, {**machine, "load_average_after": _load_average()}


def write_tables(path, text, data):
    """The markdown table at `path`, the same as JSON beside it, atomically."""
    write_text(os.path.splitext(path)[0] + ".json", json.dumps(data, indent=1) + "\n")
    write_text(path, text)
    print(text)


def child(tool, case, folder):
    from greedyhash_common.infra.runtime_settings import quiet_paddle_import

    quiet_paddle_import()
    if case in SPEED_CASES:
        result = {"suite": run_suite_one_call, "padiff": run_padiff_speed, FLOOR: run_floor}[tool](case, folder)
    else:
        result = (run_suite if tool == "suite" else run_padiff)(case, folder)
    print("RESULT " + json.dumps(result), flush=True)


def main(argv=None):
    parser = OneLineArgumentParser(prog="python -m benchmarks.padiff_comparison", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--padiff", default="/tmp/padiff", help="the folder padiff is installed in")
    parser.add_argument("--output", default=os.path.join(PROJECT_ROOT, "docs", "comparison_table.md"))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--speed-output", default=os.path.join(PROJECT_ROOT, "docs", "comparison_speed.md"))
    parser.add_argument("--speed-cases", default=",".join(SPEED_CASES))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tool on each speed case")
    parser.add_argument("--only", choices=("table", "speed"), help="measure the localization table or the speed"
                                                                     " cases alone (default: both)")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "CASE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.only != "speed":
        entries = [measure(tool, case, args.padiff) for case in args.cases.split(",") for tool in TOOLS]
        write_tables(args.output, table(entries), entries)
    if args.only != "table":
        entries, machine = measure_speed(args.speed_cases.split(","), args.repeats, args.padiff)
        write_tables(args.speed_output, speed_table(entries, machine), {"machine": machine, "entries": entries})
    return 0


if __name__ == "__main__":
    sys.exit(main())
