"""The suite's report: <workdir>/report.md for people, <workdir>/report.json for programs.

One row per step with its verdict, worst key, and max abs / max rel difference against its limit in
each precision, linked to the step's diff log; the run's settings; both sides' environment; every
figure the run wrote (such as the training loss curve); and, for a failing forward or backward step,
the layer localization. Steps are reported as the suite ran them, whatever their names.

  python -m alignment.report keep-reference RUN_DIR REFERENCE_DIR

copies the report and the small files it links (diff logs and verdicts, environments, figures) of a
finished run into REFERENCE_DIR (make align-reference: logs/reference/), replacing what was there.
"""
import argparse
import datetime
import glob
import importlib.metadata
import json
import os
import platform
import shutil
import sys

import numpy as np

from greedyhash_common.atomic import write_text
from greedyhash_common.errors import UserInputError, exits_cleanly_on_bad_input

from .check import _json_number
from .layers.localize import (DIRECTIONS, ISOLATED, CHAINED, format_localization, localization_as_json,
                              localization_path, verdict)
from .paths import diff_paths

REPORT_MD, REPORT_JSON = "report.md", "report.json"
FIGURE_PATTERNS = ("*.png", "*.svg")  # what a step draws (the training loss curve) goes in its precision's folder
REFERENCE_PATTERNS = (REPORT_MD, REPORT_JSON, "summary.json", "*/*_diff.log", "*/*_diff.json", "*/env_*.json",
                      "*/layers_localization.json") + tuple("*/" + pattern for pattern in FIGURE_PATTERNS)
LARGEST_REFERENCE_FILE = 1_000_000  # bytes: the reference is committed, so it holds small files only
# Variables a side inherits from the suite that change results on a GPU (README, GPU)
DETERMINISM_VARIABLES = ("NVIDIA_TF32_OVERRIDE", "FLAGS_cudnn_deterministic", "CUBLAS_WORKSPACE_CONFIG")


def _relative(workdir, path):
    return os.path.relpath(path, workdir).replace(os.sep, "/")


def _step_entry(workdir, row):
    log, verdict_json = diff_paths(workdir, row["dtype"], row["step"])
    return {"passed": row["passed"], "worst_key": row["worst_key"],
            **{name: _json_number(row[name]) for name in ("max_abs", "max_rel", "limit")},
            "note": row["note"], "diff_log": _relative(workdir, log), "diff_json": _relative(workdir, verdict_json)}


def _steps(workdir, rows):
    """[{"step", "dtypes": {dtype: entry}}] in the order the suite ran them."""
    steps = {}
    for row in rows:
        steps.setdefault(row["step"], {})[row["dtype"]] = _step_entry(workdir, row)
    return [{"step": step, "dtypes": dtypes} for step, dtypes in steps.items()]


def _side_environments(envs):
    """{side: {field: value}} over every precision; a field that differs between precisions (the dtype)
    lists its values."""
    merged = {}
    for env in envs.values():
        for side, fields in env.items():
            for field, value in fields.items():
                values = merged.setdefault(side, {}).setdefault(field, [])
                if value not in values:
                    values.append(value)
    return {side: {field: values[0] if len(values) == 1 else values for field, values in fields.items()}
            for side, fields in merged.items()}


def _installed(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _checker_environment():
    return {"python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__,
            "reprod_log": _installed("reprod-log"),
            **{name: os.environ.get(name, "unset") for name in DETERMINISM_VARIABLES}}


def _figures(workdir, dtypes):
    return sorted({_relative(workdir, path) for dtype in dtypes for pattern in FIGURE_PATTERNS
                   for path in glob.glob(os.path.join(workdir, dtype, pattern))})


def _localization_entry(workdir, localization):
    return {**localization_as_json(localization),
            "files": {name: _relative(workdir, path) for name, path in (
                ("diff_log", diff_paths(workdir, localization.dtype, CHAINED)[0]),
                ("isolated_diff_log", diff_paths(workdir, localization.dtype, ISOLATED)[0]),
                ("localization_json", localization_path(workdir, localization.dtype)))}}


def build_report(workdir, rows, envs, localizations, localization_failures, settings):
    """The report as a dict (report.json); report.md is rendered from it."""
    return {
        "passed": all(row["passed"] for row in rows),
        "checks_passed": sum(row["passed"] for row in rows),
        "checks": len(rows),
        "written": datetime.datetime.now().isoformat(timespec="seconds"),
        "run": settings,
        "steps": _steps(workdir, rows),
        "environment": {"sides": _side_environments(envs), "checker": _checker_environment()},
        "figures": _figures(workdir, dict.fromkeys(row["dtype"] for row in rows)),
        "localization": {dtype: _localization_entry(workdir, localization)
                         for dtype, localization in localizations.items()},
        "localization_failures": {side: _relative(workdir, log) for side, log in localization_failures.items()},
    }


def _number(value):
    return value if isinstance(value, str) else f"{value:.3g}"


def _steps_table(report):
    dtypes = list(dict.fromkeys(dtype for step in report["steps"] for dtype in step["dtypes"]))
    columns = ["step"] + [name for dtype in dtypes for name in (dtype, "worst key", "max abs", "max rel", "limit")]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for step in report["steps"]:
        cells = [step["step"]]
        for dtype in dtypes:
            entry = step["dtypes"].get(dtype)
            if entry is None:
                cells += ["not run"] + [""] * 4
                continue
            verdict_cell = f"[{'pass' if entry['passed'] else '**FAIL**'}]({entry['diff_log']})"
            cells += [verdict_cell, f"`{entry['worst_key']}`", _number(entry["max_abs"]), _number(entry["max_rel"]),
                      _number(entry["limit"])]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {step['step']}, {dtype}: {entry['note']}" for step in report["steps"]
             for dtype, entry in step["dtypes"].items() if entry["note"]]
    return lines + ([""] + notes if notes else [])


def _cell(value):
    """A field's value, or the values it took in the different precisions."""
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _environment_table(report):
    sides = report["environment"]["sides"]
    fields = list(dict.fromkeys(field for fields in sides.values() for field in fields))
    lines = ["| | " + " | ".join(sides) + " |", "|" + " --- |" * (len(sides) + 1)]
    for field in fields:
        lines.append(f"| {field} | " + " | ".join(_cell(sides[side].get(field, "")) for side in sides) + " |")
    checker = ", ".join(f"{name} {value}" for name, value in report["environment"]["checker"].items())
    return lines + ["", f"Checker: {checker}."]


def _localization_sections(report, localizations):
    lines = []
    failing = [(step["step"], dtype) for step in report["steps"] for dtype, entry in step["dtypes"].items()
               if not entry["passed"] and step["step"] in DIRECTIONS]
    for step, dtype in failing:
        lines += ["", f"### {step}, {dtype}", ""]
        if dtype not in localizations:
            failures = report["localization_failures"].items()
            lines.append("Not localized: " + (", ".join(f"the {side} layer side failed, see [its log]({log})"
                                                        for side, log in failures) or "the step's sides failed"))
            continue
        files = report["localization"][dtype]["files"]
        lines += ["```text", format_localization(localizations[dtype], (step,)), "```", "",
                  f"[layer diff log]({files['diff_log']}), [isolated diff log]({files['isolated_diff_log']}),"
                  f" [localization for programs]({files['localization_json']})"]
    return ["", "## Localization"] + lines if lines else []


def render_markdown(report, localizations):
    settings = ", ".join(f"{name} {'default' if value is None else value}" for name, value in report["run"].items())
    lines = [f"# Alignment report: {'passed' if report['passed'] else 'FAILED'}"
             f" ({report['checks_passed']}/{report['checks']} checks)", "",
             f"Run: {settings}. Written {report['written']}.", "",
             "A key passes when max |paddle - torch| <= limit = atol + rtol * max |torch|. Each verdict links to"
             " the step's diff log (reprod_log's format); in the run's folder, both sides' `.npy` files lie beside"
             " it.", "",
             "## Steps", "", *_steps_table(report), "", "## Environment", "", *_environment_table(report)]
    if report["figures"]:
        lines += ["", "## Figures", ""] + [f"![{os.path.splitext(os.path.basename(path))[0]}]({path})"
                                           for path in report["figures"]]
    return "\n".join(lines + _localization_sections(report, localizations)) + "\n"


def write_report(workdir, rows, envs, localizations, localization_failures, settings):
    """Write report.md and report.json into `workdir`; return the report (a dict)."""
    report = build_report(workdir, rows, envs, localizations, localization_failures, settings)
    write_text(os.path.join(workdir, REPORT_JSON), json.dumps(report, indent=1) + "\n")
    write_text(os.path.join(workdir, REPORT_MD), render_markdown(report, localizations))
    return report


def terminal_summary(workdir, localizations, localization_failures):
    """Lines for the terminal under the suite's table: each localized failure's verdict, and the report."""
    lines = [verdict(trace, localization.dtype) for localization in localizations.values()
             for trace in localization.traces if not trace.passed]
    lines += [f"layer localization failed: {side} side, see {log}" for side, log in localization_failures.items()]
    return "\n".join(lines + [f"report: {os.path.join(workdir, REPORT_MD)}"])


def keep_reference(run_dir, reference_dir):
    """Replace `reference_dir` by the report and small files of the finished run in `run_dir`."""
    if not os.path.isfile(os.path.join(run_dir, REPORT_MD)):
        raise UserInputError(f"{run_dir}: no {REPORT_MD}; run the suite there first")
    chosen = sorted({path for pattern in REFERENCE_PATTERNS for path in glob.glob(os.path.join(run_dir, pattern))})
    too_large = [path for path in chosen if os.path.getsize(path) > LARGEST_REFERENCE_FILE]
    if too_large:
        raise UserInputError(f"larger than {LARGEST_REFERENCE_FILE} bytes, not kept as reference:"
                             f" {', '.join(too_large)}")
    staging = reference_dir.rstrip(os.sep) + ".new"
    shutil.rmtree(staging, ignore_errors=True)
    for path in chosen:
        target = os.path.join(staging, os.path.relpath(path, run_dir))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(path, target)
    shutil.rmtree(reference_dir, ignore_errors=True)
    os.replace(staging, reference_dir)
    print(f"kept {len(chosen)} files of {run_dir} in {reference_dir}")


@exits_cleanly_on_bad_input
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m alignment.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("keep-reference",))
    parser.add_argument("run_dir")
    parser.add_argument("reference_dir")
    args = parser.parse_args(argv)
    keep_reference(args.run_dir, args.reference_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
