"""The suite's report: <workdir>/report.md for people, <workdir>/report.json for programs.

One row per step and case (weight set, size) with its verdict, worst key, and max abs / max rel
difference against its limit in each precision, linked to the step's diff log; the coverage table
(alignment.coverage: what the checked inputs exercised in each layer, and the layers they did not);
the run's settings; both sides' environment; the figures (alignment.figures: the divergence profile
along the layers, the train step's per-iteration differences); and, for a failing forward or
backward step, the layer localization. Steps are reported as the suite ran them, whatever their names.

  python -m alignment.report keep-reference RUN_DIR REFERENCE_DIR

copies the report and the small files it links (diff logs and verdicts, environments, figures) of a
finished run into REFERENCE_DIR (make align-reference: logs/reference/), replacing what was there.
"""
import argparse
import dataclasses
import datetime
import glob
import importlib.metadata
import json
import math
import os
import platform
import shutil
import sys

import numpy as np

from greedyhash_common.infra.atomic import replace_folder, write_text
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input

from . import coverage
from .figures import FIGURES_DIR, draw_figures
from .layers.localize import (DIRECTIONS, ISOLATED, CHAINED, format_localization, localization_as_json,
                              localization_path)
from .paths import STAMP_SUFFIX, diff_paths
from .verdict import MEASURES, StepVerdict, all_passed

REPORT_MD, REPORT_JSON = "report.md", "report.json"
# Readable at any depth: a layer table shows REGION rows either side of each divergence (and every row
# that differs fed torch's values); a list of layers names NAMED_LAYERS of them; the terminal's summary
# under the step table names NOT_COVERED_LINES groups of layers not covered
REGION, NAMED_LAYERS, NOT_COVERED_LINES = 5, 5, 5
REFERENCE_PATTERNS = (REPORT_MD, REPORT_JSON, "summary.json", "*/*/*_diff.log", "*/*/*_diff.json", "*/env_*.json",
                      "*/*/layers_localization.json", "coverage/*.json", f"{FIGURES_DIR}/*.png")
LARGEST_REFERENCE_FILE = 1_000_000  # bytes: the reference is committed, so it holds small files only
# Variables a side inherits from the suite that change results on a GPU (docs/gpu.md)
DETERMINISM_VARIABLES = ("NVIDIA_TF32_OVERRIDE", "FLAGS_cudnn_deterministic", "CUBLAS_WORKSPACE_CONFIG")


def _relative(workdir, path):
    return os.path.relpath(path, workdir).replace(os.sep, "/")


def _step_entry(workdir, row):
    log, verdict_json = diff_paths(workdir, row.dtype, row.case, row.step)
    return {**row.as_json(), "diff_log": _relative(workdir, log), "diff_json": _relative(workdir, verdict_json)}


def _steps(workdir, rows):
    """[{"step", "case", "dtypes": {dtype: entry}}] in the order the suite ran them."""
    steps = {}
    for row in rows:
        steps.setdefault((row.step, row.case.label), {})[row.dtype] = _step_entry(workdir, row)
    return [{"step": step, "case": case, "dtypes": dtypes} for (step, case), dtypes in steps.items()]


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


def _localization_entry(workdir, localization):
    dtype, case = localization.dtype, localization.case
    return {**localization_as_json(localization), "case": case.label,
            "files": {name: _relative(workdir, path) for name, path in (
                ("diff_log", diff_paths(workdir, dtype, case, CHAINED)[0]),
                ("isolated_diff_log", diff_paths(workdir, dtype, case, ISOLATED)[0]),
                ("localization_json", localization_path(workdir, dtype, case)))}}


def build_report(workdir, rows, envs, localizations, localization_failures, settings, coverage_rows=(),
                 figures=(), *, pair):
    """The report as a dict (report.json); report.md is rendered from it."""
    return {
        "passed": all_passed(rows),
        "checks_passed": sum(row.passed for row in rows),
        "checks_passed_as_rounding": sum(row.as_rounding for row in rows),
        "checks": len(rows),
        "diagnosis": [row.line() for row in rows if row.findings],
        "not_covered": [row.layer for row in coverage.not_covered(coverage_rows)],
        "written": datetime.datetime.now().isoformat(timespec="seconds"),
        "run": settings,
        "steps": _steps(workdir, rows),
        "environment": {"sides": _side_environments(envs), "checker": _checker_environment()},
        "coverage": [row.as_json() for row in coverage_rows],
        "figures": [_relative(workdir, path) for path in figures],
        "localization": {localization.title: _localization_entry(workdir, localization)
                         for localization in localizations.values()},
        "localization_failures": {side: _relative(workdir, log) for side, log in localization_failures.items()},
        **_mutation_score(workdir, pair),
    }


def _mutation_score(workdir, pair):
    """{"mutation_score": how much a pass of these checks proves, or None before a mutation run} for a pair
    that is scored (its mutation_score(workdir) -> (line, report file)); {} for any other."""
    if pair.mutation_score is None:
        return {}
    found = pair.mutation_score(workdir)
    return {"mutation_score": found and {"line": found[0], "report": _relative(workdir, found[1])}}


def _number(value):
    return value if isinstance(value, str) else f"{value:.3g}"


def _verdict_word(verdict):
    if not verdict.passed:
        return f"**FAIL** ({verdict.kind})"
    return "pass (rounding)" if verdict.as_rounding else "pass"


def _checks(step):
    """{dtype: (its StepVerdict, its diff log)} of a report's step entry: the verdicts read back from the JSON,
    so that report.md says what report.json does (an older run's report.json included)."""
    return {dtype: (StepVerdict.from_json(entry), entry["diff_log"]) for dtype, entry in step["dtypes"].items()}


def _steps_table(report):
    dtypes = list(dict.fromkeys(dtype for step in report["steps"] for dtype in step["dtypes"]))
    columns = ["step", "case"] + [name for dtype in dtypes
                                  for name in (dtype, "worst key", "max abs", "max rel", "limit")]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for step in report["steps"]:
        cells, checks = [step["step"], step["case"]], _checks(step)
        for dtype in dtypes:
            if dtype not in checks:
                cells += ["not run"] + [""] * 4
                continue
            verdict, diff_log = checks[dtype]
            cells += [f"[{_verdict_word(verdict)}]({diff_log})", f"`{verdict.worst_key}`",
                      *(_number(getattr(verdict, name)) for name in MEASURES)]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {verdict.step} {verdict.case.label}, {dtype}: {verdict.note}" for step in report["steps"]
             for dtype, (verdict, _) in _checks(step).items() if verdict.note]
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
    by_title = {localization.title: localization for localization in localizations.values()}
    failing = [(verdict.step, f"{dtype}, {verdict.case.label}") for step in report["steps"]
               for dtype, (verdict, _) in _checks(step).items()
               if (not verdict.passed or verdict.as_rounding) and verdict.step in DIRECTIONS]
    for step, title in failing:
        lines += ["", f"### {step}, {title}", ""]
        if title not in by_title:
            failures = report["localization_failures"].items()
            lines.append("Not localized: " + (", ".join(f"the {side} layer side failed, see [its log]({log})"
                                                        for side, log in failures) or "the step's sides failed"))
            continue
        files = report["localization"][title]["files"]
        shown, total = around_divergences(by_title[title])
        lines += ["```text", format_localization(shown, (step,)), "```", "",
                  f"Shown: the layers within {REGION} of each divergence and every layer that differs fed torch's"
                  f" values ({sum(len(trace.rows) for trace in shown.traces_of(step))} of {total[step]} rows); every"
                  f" layer: [layer diff log]({files['diff_log']}), [isolated diff log]({files['isolated_diff_log']}),"
                  f" [localization for programs]({files['localization_json']})"]
    return ["", "## Localization"] + lines if lines else []


def _region(trace):
    """The rows of `trace` within REGION of its first divergence, and every row that differs fed torch's
    values (none of a trace that agrees: its verdict says so)."""
    divergence = trace.divergence()
    if divergence is None:
        return [row for row in trace.rows if not row.isolated.passed]
    start = trace.rows.index(divergence[0])
    return [row for index, row in enumerate(trace.rows)
            if abs(index - start) <= REGION or not row.isolated.passed or row is divergence[0]]


def around_divergences(localization):
    """(a copy of `localization` whose traces keep the rows around each divergence, {direction: rows of its
    traces in full}): a layer table of a deep model stays readable; the diff logs hold every row."""
    total = {}
    for trace in localization.traces:
        total[trace.direction] = total.get(trace.direction, 0) + len(trace.rows)
    traces = [dataclasses.replace(trace, rows=_region(trace)) for trace in localization.traces]
    return dataclasses.replace(localization, traces=traces), total


def _coverage_table(report):
    rows = [coverage.LayerCoverage.from_json(entry) for entry in report["coverage"]]
    if not rows:
        return []
    lines = ["", "## Coverage: what the checked inputs exercised", "",
             "Per layer of the reference model, over every case of the forward step (eval mode; dropout in"
             " training mode). A layer is covered when every criterion of its kind was met in some case"
             " (alignment/coverage.py lists them); otherwise it is not, and a port that differs from the"
             " reference only where the inputs never went would still pass.", "",
             "| layer | type | input min | input max | output min | output max | output std | exercised | covered |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        exercised = "; ".join(f"{criterion}: {', '.join(cases) if cases else 'never'}"
                              for criterion, cases in row.criteria.items())
        facts = "; ".join(f"{case}: {_facts_text(found)}" for case, found in row.facts.items() if found)
        exercised += f" ({facts})" if facts else ""
        verdict_cell = "yes" if row.covered else f"**not covered**: {', '.join(row.gaps)}"
        cells = [f"`{row.layer}`", row.type, *(_number(getattr(row, end).get(bound, math.nan)) for end, bound in (
            ("input", "min"), ("input", "max"), ("output", "min"), ("output", "max"), ("output", "std"))),
            exercised, verdict_cell]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def _mutation_section(report):
    if "mutation_score" not in report:
        return []
    found = report["mutation_score"]
    if not found:
        return ["", "## Mutation score", "", "No mutation run yet: `make align-mutants` scores these checks"
                " against generated port defects."]
    return ["", "## Mutation score", "", f"{found['line']} ([report]({found['report']}))."]


def _facts_text(facts):
    return ", ".join(f"{name.replace('_', ' ')} {_number(value) if isinstance(value, float) else value}"
                     for name, value in facts.items())


def _headline(report):
    counts = f"{report['checks_passed']}/{report['checks']} checks"
    if report["checks_passed_as_rounding"]:
        counts += f", {report['checks_passed_as_rounding']} passed as rounding"
    if report["not_covered"]:
        counts += f", {len(report['not_covered'])} layers not covered"
    return f"{'passed' if report['passed'] else 'FAILED'} ({counts})"


def _first_screen(report):
    """One line per failing check (and per check passed as rounding): its class and why; then the layers
    not covered, in one line."""
    lines = [f"- {line}" for line in report["diagnosis"]]
    if report["not_covered"]:
        lines.append(f"- {_named(report['not_covered'])} not covered ([coverage](#coverage-what-the-checked-inputs-exercised))")
    return lines + [""] if lines else []


def _named(layers, shown=NAMED_LAYERS):
    """"N layers (a, b, c and M more)"."""
    more = f" and {len(layers) - shown} more" if len(layers) > shown else ""
    return f"{len(layers)} layer{'s' if len(layers) > 1 else ''} ({', '.join(layers[:shown])}{more})"


def render_markdown(report, localizations):
    settings = ", ".join(f"{name} {'default' if value is None else value}" for name, value in report["run"].items())
    lines = [f"# Alignment report: {_headline(report)}", "", *_first_screen(report),
             f"Run: {settings}. Written {report['written']}.", "",
             "A key passes when max |paddle - torch| <= limit = atol + rtol * max |torch|. Each verdict links to"
             " the step's diff log (reprod_log's format); in the run's folder, both sides' `.npy` files lie beside"
             " it.", "",
             "## Steps", "", *_steps_table(report), *_coverage_table(report), *_mutation_section(report), "",
             "## Environment", "",
             *_environment_table(report)]
    if report["figures"]:
        lines += ["", "## Figures", ""] + [f"![{os.path.splitext(os.path.basename(path))[0]}]({path})"
                                           for path in report["figures"]]
    return "\n".join(lines + _localization_sections(report, localizations)) + "\n"


def write_report(workdir, rows, envs, localizations, localization_failures, settings, coverage_rows=(), *, pair):
    """Draw the figures, write report.md and report.json into `workdir`; return the report (a dict)."""
    figures = draw_figures(workdir, rows, localizations)
    report = build_report(workdir, rows, envs, localizations, localization_failures, settings, coverage_rows,
                          figures, pair=pair)
    write_text(os.path.join(workdir, REPORT_JSON), json.dumps(report, indent=1) + "\n")
    write_text(os.path.join(workdir, REPORT_MD), render_markdown(report, localizations))
    return report


def _not_covered_lines(coverage_rows):
    """The layers not covered, one line per unmet criterion and kind of layer, each naming a few layers."""
    groups = {}
    for row in coverage.not_covered(coverage_rows):
        for gap in row.gaps:
            groups.setdefault((row.type, gap), []).append(row.layer)
    return [f"not covered: {_named(layers)} ({kind}): {gap}" for (kind, gap), layers in groups.items()]


def terminal_summary(workdir, rows, localization_failures, coverage_rows=()):
    """Lines for the terminal under the suite's table (SUMMARY_LINES at most beside the table's): each failing
    check's class and why, the layers not covered, and the report."""
    lines = [row.line() for row in rows if row.findings]
    lines += [f"layer localization failed: {side} side, see {log}" for side, log in localization_failures.items()]
    lines += _not_covered_lines(coverage_rows)[:NOT_COVERED_LINES]
    return "\n".join(lines + [f"report: {os.path.join(workdir, REPORT_MD)}"])


def closing_line(rows, coverage_rows, workdir):
    """The verdict: checks passed outright and as rounding (named), and the layers no check exercised."""
    passed = all_passed(rows)
    text = f"alignment {'passed' if passed else 'FAILED'}: {sum(row.passed for row in rows)}/{len(rows)} checks"
    rounding = [row.label for row in rows if row.as_rounding]
    if rounding:
        text += f" ({len(rounding)} passed as rounding: {', '.join(rounding)})"
    uncovered = coverage.not_covered(coverage_rows)
    if uncovered:
        text += f", {_named([row.layer for row in uncovered])} not covered"
    return text + f"; details in {workdir}"


def keep_reference(run_dir, reference_dir):
    """Replace `reference_dir` by the report and small files of the finished run in `run_dir`."""
    if not os.path.isfile(os.path.join(run_dir, REPORT_MD)):
        raise UserInputError(f"{run_dir}: no {REPORT_MD}; run the suite there first")
    chosen = sorted({path for pattern in REFERENCE_PATTERNS for path in glob.glob(os.path.join(run_dir, pattern))
                     if not path.endswith(STAMP_SUFFIX)})  # a stamp is the run's cache key, not a result
    too_large = [path for path in chosen if os.path.getsize(path) > LARGEST_REFERENCE_FILE]
    if too_large:
        raise UserInputError(f"larger than {LARGEST_REFERENCE_FILE} bytes, not kept as reference:"
                             f" {', '.join(too_large)}")
    def fill(staging):
        for path in chosen:
            target = os.path.join(staging, os.path.relpath(path, run_dir))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(path, target)
        # the committed scores (GreedyHash's mutants/, the others' mutants-<name>/) are regenerated on their own
        # (make align-mutants-reference)
        for kept_mutants in glob.glob(os.path.join(reference_dir, "mutants*")):
            if os.path.isdir(kept_mutants):
                shutil.copytree(kept_mutants, os.path.join(staging, os.path.basename(kept_mutants)))

    replace_folder(reference_dir, fill)
    print(f"kept {len(chosen)} files of {run_dir} in {reference_dir}")


@exits_cleanly_on_bad_input
def main(argv=None):
    parser = OneLineArgumentParser(prog="python -m alignment.report", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("keep-reference",))
    parser.add_argument("run_dir")
    parser.add_argument("reference_dir")
    args = parser.parse_args(argv)
    keep_reference(args.run_dir, args.reference_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
