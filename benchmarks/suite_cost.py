"""The alignment suite's own cost: runs of the suite measured N times each, in one command, for this
tree or any other checkout (a git worktree of an older commit), so that before and after come from
the same measurement.

  python -m benchmarks.suite_cost [--label after] [--checkout DIR] [--runs default,resnet18,resnet50-224]
                                  [--repeats 3] [--scratch /tmp] [--output-dir logs/reference-bench]
  make bench-suite BENCH_ARGS="..."

Each repeat is a fresh run in an empty workdir under --scratch (removed afterwards), as a user's first
run: its wall, user and system seconds and minor page faults (the whole process tree's), its peak
resident memory (the largest process, and the processes summed), its peak and final disk use under the
workdir; and its phases, from the times at which the suite's own output lines arrive (PHASES below), and
each side's step seconds (the suite's side_*.log). Results go under their --label into
<output-dir>/suite_cost.json (a label measured again replaces its entry, the others stay) and the
tables of every label, side by side, into <output-dir>/suite_cost.md, both rendered by this command.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.project import PROJECT_ROOT

from . import process_peak, timing
from .bench import MAKE_ALIGN_ARGS, machine_description, parse_side_logs

# {name: (what it is, the suite's arguments)}
RUNS = {"default": ("make align", ("--model", "greedyhash", *MAKE_ALIGN_ARGS)),
        "resnet18": ("make align MODEL=resnet18", ("--model", "resnet18", "--dtypes", "float32,float64")),
        "resnet50-224": ("ResNet-50 forward and backward at 224 px, float64",
                         ("--model", "resnet50", "--steps", "forward,backward", "--sizes", "224",
                          "--dtypes", "float64"))}  # no --bit: a ResNet has no hash codes (ModelPair.code_length)
FIGURES = (("wall_seconds", "wall s", "{:.0f}"), ("user_seconds", "user s", "{:.0f}"),
           ("system_seconds", "system s", "{:.0f}"), ("minor_page_faults", "minor faults M", "{:.1f}", 1e-6),
           ("peak_process_rss_mb", "peak RSS, largest process GB", "{:.2f}", 1 / 1024),
           ("peak_tree_rss_mb", "peak RSS, summed GB", "{:.2f}", 1 / 1024),
           ("peak_disk_mb", "peak disk GB", "{:.2f}", 1 / 1024), ("final_disk_mb", "final disk GB", "{:.2f}", 1 / 1024))
# A side's step line as the suite prints it: "[   17 s] torch optim seeded float64: 15.1 s"
SIDE_LINE = re.compile(r"^\s*([0-9.]+) \[\s*\d+ s\] (torch|paddle) (\w+) (?:\S+ )?(float32|float64): ([0-9.]+) s$")
LAYERS = "layers"
PHASES = ("before the sides' first step (batch, weight sets, side start)", "the sides' steps",
          "after the sides, before localization (checks)", "localization (layer records)",
          "after localization (diagnosis, report)")
FILE_NAME = "suite_cost"
TOP_STEPS = 8
COMMAND_WORDS = 4  # of a process's command line in the report: its program and module


def phases(timestamped_lines, wall):
    """{phase: seconds} (PHASES) from the suite's output lines, each prefixed with its arrival second; None
    when no side step line came."""
    steps, layers = [], []
    for line in timestamped_lines:
        match = SIDE_LINE.match(line)
        if match:
            arrived, seconds = float(match.group(1)), float(match.group(5))
            (layers if match.group(3) == LAYERS else steps).append((arrived - seconds, arrived))
    if not steps:
        return None
    sides_start, sides_end = min(start for start, _ in steps), max(end for _, end in steps)
    layers_start = min((start for start, _ in layers), default=None)
    layers_end = max((end for _, end in layers), default=None)
    checks_end = max(sides_end, layers_start) if layers else wall
    after = wall - max(checks_end, layers_end if layers else checks_end)
    return dict(zip(PHASES, (sides_start, sides_end - sides_start, checks_end - sides_end,
                             (layers_end - layers_start) if layers else 0.0, after)))


def checkout_environment(checkout):
    """The environment a checkout's suite runs in: its own code importable first."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])))


def commit_of(checkout):
    done = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", checkout, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (done.stdout.strip() + (" (with uncommitted changes)" if dirty else "")) if done.returncode == 0 else None


def measure_once(args, name, log_folder):
    """One fresh run of the suite `name` (RUNS) in an empty workdir; its figures."""
    workdir = tempfile.mkdtemp(prefix=f"suite-cost-{name}-", dir=args.scratch)
    # absolute: the run's working folder is the checkout, and this process reads the log back
    log_path = os.path.abspath(os.path.join(log_folder, f"{FILE_NAME}-{args.label}-{name}.log"))
    command = [args.python, "-m", "alignment", *RUNS[name][1], *args.suite_args.split(), "--workdir", workdir]
    try:
        with timing.OtherPrograms() as machine:
            result = process_peak.measure(command, cwd=args.checkout, env=checkout_environment(args.checkout),
                                          log_path=log_path, disk=workdir, timestamps=True)
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            result["phases"] = phases(handle, result["wall_seconds"] or 0.0)
        steps = sorted(parse_side_logs(workdir).items(), key=lambda item: -item[1])
        result["slowest_side_steps"] = [{"framework": framework, "step": step, "dtype": dtype, "seconds": seconds}
                                        for (framework, step, dtype), seconds in steps]
        return {**result, **machine.figures()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def median_spread(values):
    values = [value for value in values if value is not None]
    return timing.spread(values) if values else None


def measure_runs(args):
    """{name: {"what", "command", "repeats": [figures...], "summary": {figure: spread}}} of --runs."""
    measured = {}
    for name in args.runs.split(","):
        repeats = []
        for repeat in range(args.repeats):
            print(f"suite_cost: {args.label} {name} {repeat + 1}/{args.repeats} "
                  f"(load average {timing.load_average():.2f})", flush=True)
            repeats.append(measure_once(args, name, args.output_dir))
        summary = {figure: median_spread([run.get(figure) for run in repeats]) for figure, *_ in FIGURES}
        measured[name] = {"what": RUNS[name][0],
                          "command": " ".join(["python -m alignment", *RUNS[name][1], *args.suite_args.split()]),
                          "repeats": repeats, "summary": summary,
                          "phases": {phase: statistics.median([run["phases"][phase] for run in repeats])
                                     for phase in PHASES} if all(run["phases"] for run in repeats) else None}
    return measured


# ------------------------------------------------------------------------------------------ report
def _cell(spread, form, scale=1.0):
    if not spread:
        return "-"
    value = form.format(spread["median"] * scale)
    if spread["runs"] > 1:
        value += f" ({form.format(spread['min'] * scale)}-{form.format(spread['max'] * scale)})"
    return value


def _load(entry):
    loads = [run["load_average_before"] for run in entry["repeats"] if run.get("load_average_before") is not None]
    others = [run["other_programs_cores"] for run in entry["repeats"] if run.get("other_programs_cores") is not None]
    return f"{max(loads):.2f} / {max(others):.2f}" if loads and others else "-"


def markdown_report(report):
    labels = list(report["labels"])
    names = [name for name in RUNS if any(name in report["labels"][label]["runs"] for label in labels)]
    lines = ["# The alignment suite's own cost", "",
             "Written by `python -m benchmarks.suite_cost` (`make bench-suite`); every figure is the median of the "
             "repeats (slowest-fastest), each repeat a fresh run in an empty workdir. Measured on: "
             + "; ".join(f"**{label}**: {entry['checkout_commit'] or entry['checkout']}, {entry['repeats']} "
                         f"repeat(s), {entry['started']}, {entry['machine']['cpu']} ({entry['machine']['cores']} cores)"
                         for label, entry in report["labels"].items()) + ".", ""]
    for name in names:
        rows = [(label, report["labels"][label]["runs"][name]) for label in labels
                if name in report["labels"][label]["runs"]]
        lines += [f"## {rows[0][1]['what']}", "", f"`{rows[0][1]['command']}`", "",
                  "| checkout | exit | " + " | ".join(title for _, title, *_ in FIGURES) + " | load before / other cores |",
                  "|---|---|" + "---:|" * len(FIGURES) + "---:|"]
        for label, entry in rows:
            exits = ",".join(sorted({str(run["returncode"]) for run in entry["repeats"]}))
            cells = [_cell(entry["summary"][figure], form, *scale) for figure, _, form, *scale in FIGURES]
            lines.append(f"| {label} | {exits} | " + " | ".join(cells) + f" | {_load(entry)} |")
        if any(entry["phases"] for _, entry in rows):
            lines += ["", "Phases, median seconds (from the times at which the suite's output lines arrive):", "",
                      "| phase | " + " | ".join(label for label, _ in rows) + " |", "|---|" + "---:|" * len(rows)]
            for phase in PHASES:
                lines.append(f"| {phase} | " + " | ".join(f"{entry['phases'][phase]:.0f}" if entry["phases"] else "-"
                                                         for _, entry in rows) + " |")
        lines += ["", "The largest processes' sampled peak resident memory, GB (first repeat):", ""]
        lines += [f"- {label}: " + "; ".join(f"`{' '.join(process['command'].split()[:COMMAND_WORDS])}` "
                                             f"{process['peak_rss_mb'] / 1024:.2f}"
                                             for process in entry["repeats"][0].get("largest_processes", []))
                  for label, entry in rows]
        lines += ["", "Each side's slowest steps, seconds summed over cases (first repeat):", "",
                  "| " + " | ".join(label for label, _ in rows) + " |", "|" + "---|" * len(rows)]
        tops = [entry["repeats"][0]["slowest_side_steps"][:TOP_STEPS] for _, entry in rows]
        for rank in range(max(map(len, tops), default=0)):
            lines.append("| " + " | ".join(f"{top[rank]['framework']} {top[rank]['step']} {top[rank]['dtype']}: "
                                           f"{top[rank]['seconds']:.1f}" if rank < len(top) else ""
                                           for top in tops) + " |")
        lines.append("")
    return "\n".join(lines)


def previous_report(json_path):
    if not os.path.exists(json_path):
        return {"labels": {}}
    with open(json_path, encoding="utf-8") as handle:
        return json.load(handle)


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m benchmarks.suite_cost", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="after", help="the name of this checkout's results (before, after...)")
    parser.add_argument("--checkout", default=str(PROJECT_ROOT),
                        help="the project tree whose suite is measured, e.g. a git worktree of an older commit")
    parser.add_argument("--python", default=sys.executable, help="the interpreter running the suite")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, from {', '.join(RUNS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", default=tempfile.gettempdir(),
                        help="where each run's workdir is made (it needs up to 20 GB free before the change)")
    parser.add_argument("--output-dir", default=os.path.join(PROJECT_ROOT, "logs", "reference-bench"))
    parser.add_argument("--suite-args", default="", help='more options for the suite, e.g. "--no-profile"')
    parser.add_argument("--render-only", action="store_true", help="rewrite the markdown from the JSON, measure nothing")
    return parser


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    unknown = [name for name in args.runs.split(",") if name not in RUNS]
    if unknown:
        raise UserInputError(f"unknown runs {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    if not os.path.isfile(os.path.join(args.checkout, "alignment", "__main__.py")):
        raise UserInputError(f"{args.checkout}: not a checkout of this project (no alignment/__main__.py)")
    os.makedirs(args.output_dir, exist_ok=True)
    json_path, markdown_path = (os.path.join(args.output_dir, f"{FILE_NAME}.{suffix}") for suffix in ("json", "md"))
    report = previous_report(json_path)
    if not args.render_only:
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")
        runs = measure_runs(args)
        entry = report["labels"].setdefault(args.label, {"runs": {}})
        entry.update(checkout=os.path.abspath(args.checkout), checkout_commit=commit_of(args.checkout),
                     repeats=args.repeats, started=started, machine=machine_description())
        entry["runs"].update(runs)
        write_text(json_path, json.dumps(report, indent=2) + "\n")
    write_text(markdown_path, markdown_report(report) + "\n")
    print(markdown_report(report))
    print(f"written: {json_path}, {markdown_path}")
    measured = {} if args.render_only else report["labels"][args.label]["runs"]
    # a suite that ran to its verdict (0 passed, 1 a check failed: ResNet-18's library differences) measured
    # its whole run; any other status is a run that did not
    return 1 if any(repeat["returncode"] not in (0, 1) for run in measured.values() for repeat in run["repeats"]) else 0


if __name__ == "__main__":
    sys.exit(main())
