"""The suite-cost benchmark (benchmarks/suite_cost.py, make bench-suite) and what it measures with
(benchmarks/process_peak.py): the phases read from the suite's timed output lines, a command tree's CPU
time, page faults, disk and largest processes, and one small run of an older checkout's suite rendered
beside this tree's."""
import json
import os
import shutil
import sys

import pytest

from benchmarks import process_peak, suite_cost
from tests.conftest import PROJECT_ROOT, run_module

# The suite's output as the harness logs it: each line prefixed with the second it arrived
SUITE_OUTPUT = """\
     0.50 preparing the batch, the split and the weight sets (seeded, rescaled) in /tmp/w/inputs
    12.00 [   10 s] paddle data 224px float32: 2.0 s
    14.00 [   12 s] torch forward seeded-224px float32: 0.5 s
    90.00 [   88 s] paddle metric rescaled-64px float64: 8.0 s
    91.00 step       case             dtype    verdict  worst key
   100.00 [    4 s] torch layers seeded-224px float32: 4.0 s
   110.00 [   10 s] paddle layers seeded-224px float64: 5.0 s
   113.00 report: /tmp/w/report.md
"""


def test_the_phases_are_read_from_the_times_the_suite_s_lines_arrive():
    phases = suite_cost.phases(SUITE_OUTPUT.splitlines(keepends=True), wall=115.0)
    assert phases == dict(zip(suite_cost.PHASES, (10.0, 80.0, 6.0, 14.0, 5.0)))


def test_a_run_without_localization_has_its_checks_until_the_end():
    lines = [line for line in SUITE_OUTPUT.splitlines() if " layers " not in line]
    assert suite_cost.phases(lines, wall=115.0) == dict(zip(suite_cost.PHASES, (10.0, 80.0, 25.0, 0.0, 0.0)))


def test_no_side_line_no_phases():
    assert suite_cost.phases(["error: the data is missing\n"], wall=3.0) is None


WRITES_THEN_SHRINKS = """
import os, sys, time
path = os.path.join(sys.argv[1], "values.bin")
with open(path, "wb") as handle:
    handle.write(os.urandom(8 * 2 ** 20))
time.sleep(1.0)
with open(path, "wb") as handle:
    handle.write(os.urandom(2 ** 20))
"""


def test_a_command_s_peak_and_final_disk_cpu_time_and_largest_process_are_measured(tmp_path):
    result = process_peak.run([sys.executable, "-c", WRITES_THEN_SHRINKS, str(tmp_path)], disk=str(tmp_path))
    assert result["returncode"] == 0
    assert result["peak_disk_mb"] >= 7.5 and 0.9 <= result["final_disk_mb"] <= 1.5
    assert result["user_seconds"] + result["system_seconds"] > 0 and result["minor_page_faults"] > 0
    assert "WRITES_THEN_SHRINKS" not in result["largest_processes"][0]["command"]
    assert result["largest_processes"][0]["command"].startswith("python")


def test_an_unknown_run_is_one_line(tmp_path):
    done = run_module("benchmarks.suite_cost", "--runs", "default,mobilenet", "--output-dir", tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: unknown runs mobilenet; choose from default, resnet18, resnet50-224")


@pytest.mark.slow
def test_an_older_checkout_and_this_tree_are_measured_by_one_command(tmp_path):
    """A copy of this tree stands for an older commit: measured under its label, then this tree under its
    own, both in one report. (About 40 s on an idle 2-core machine: two small runs of the suite.)"""
    older = tmp_path / "older"
    shutil.copytree(PROJECT_ROOT, older, ignore=shutil.ignore_patterns(".venv*", "logs", ".git", "__pycache__"))
    small = ["--runs", "default", "--repeats", "1", "--scratch", tmp_path, "--output-dir", tmp_path / "out",
             "--suite-args", "--steps loss --dtypes float64 --sizes 64 --weight-sets seeded --no-profile"]
    for label, checkout in (("before", older), ("after", PROJECT_ROOT)):
        done = run_module("benchmarks.suite_cost", "--label", label, "--checkout", checkout, *small, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "suite_cost.json").read_text())
    assert list(report["labels"]) == ["before", "after"]
    assert report["labels"]["before"]["checkout"] == str(older)
    run = report["labels"]["after"]["runs"]["default"]
    figures = run["repeats"][0]
    assert figures["peak_disk_mb"] >= figures["final_disk_mb"] > 100  # the seeded set: a run of one step keeps it
    assert run["phases"][suite_cost.PHASES[1]] > 0
    assert [step["step"] for step in figures["slowest_side_steps"]] == ["loss", "loss"]
    markdown = (tmp_path / "out" / "suite_cost.md").read_text()
    assert "| before | 0 |" in markdown and "| after | 0 |" in markdown
    assert not [name for name in os.listdir(tmp_path) if name.startswith("suite-cost-")]  # workdirs removed
