"""One verdict per check (alignment.verdict): decided once, with the rounding rule, and read by the terminal,
report.md, report.json, summary.json and every other reader, an older run's JSON included."""
import json
import os

import numpy as np
import pytest

from alignment.cases import Case
from alignment.check import StepResult, compare_arrays
from alignment.diagnosis import DEFECT, ROUNDING, Finding
from alignment.layers.localize import LayerRow, Localization, Trace
from alignment.pairs.greedyhash import GREEDYHASH
from alignment.report import closing_line, write_report
from alignment.tolerances import NEAR_EXACT
from alignment.verdict import StepVerdict, all_passed, verdict_table, verdicts

from .conftest import PROJECT_ROOT

CASE = Case("seeded", 64)
ENV = {dtype: {"torch": {"framework": "torch"}, "paddle": {"framework": "paddle"}} for dtype in ("float32", "float64")}


def rounding_and_defect():
    """A float32 backward failure float64 does not share, every layer agreeing fed torch's values (rounding),
    and a float32 forward failure float64 shares (a defect)."""
    def keys(port):
        return [compare_arrays("g", np.ones(2), np.asarray(port), NEAR_EXACT)]

    agree, differ = keys([1.0, 1.0])[0], keys([1.0, 1.5])[0]
    layer = LayerRow("features.1", "MaxPool2d", agree, differ, agree)
    localization = Localization("float32", [Trace("eval", "backward", [layer])], [], CASE)
    results = [StepResult("backward", "float32", keys([1.0, 1.5]), CASE),
               StepResult("backward", "float64", keys([1.0, 1.0]), CASE),
               StepResult("forward", "float32", keys([1.0, 1.5]), CASE),
               StepResult("forward", "float64", keys([1.0, 1.5]), CASE)]
    return verdicts(results, {("float32", CASE): localization})


def test_a_rounding_pass_is_decided_once_and_every_view_says_so(tmp_path):
    """The float32 backward check failed on its keys; its verdict (rounding) is what the terminal, report.md,
    report.json and a JSON reader say, none of them judging the keys again."""
    rows = rounding_and_defect()
    rounding, _, defect, _ = rows
    assert rounding.passed and rounding.as_rounding and rounding.kind == ROUNDING
    assert not defect.passed and defect.kind == DEFECT and not all_passed(rows)
    table = verdict_table(rows, [("step", 10), ("case", 16), ("dtype", 8)]).splitlines()
    assert table[2].split()[:4] == ["backward", "seeded-64px", "float32", "rounding"]
    assert table[4].split()[:4] == ["forward", "seeded-64px", "float32", "FAIL"]
    report = write_report(str(tmp_path), rows, ENV, {}, {}, {}, pair=GREEDYHASH)
    assert (report["checks_passed"], report["checks_passed_as_rounding"], report["passed"]) == (2, 1, False)
    markdown = (tmp_path / "report.md").read_text()
    assert "| backward | seeded-64px | [pass (rounding)](float32/seeded-64px/backward_diff.log) |" in markdown
    assert "| forward | seeded-64px | [**FAIL** (defect)](float32/seeded-64px/forward_diff.log) |" in markdown
    assert "1 passed as rounding: backward seeded-64px float32" in closing_line(rows, [], "logs")
    entries = [entry for step in report["steps"] for entry in step["dtypes"].values()]
    assert [StepVerdict.from_json(entry) for entry in entries] == rows


def test_a_verdict_reads_back_as_it_was_written():
    rows = rounding_and_defect()
    assert [StepVerdict.from_json(json.loads(json.dumps(row.as_json()))) for row in rows] == rows


def test_passed_follows_the_findings_alone():
    """A verdict cannot hold a flag that disagrees with its findings: a defect beside rounding fails."""
    def verdict(*kinds):
        return StepVerdict(step="forward", case=CASE, dtype="float32", worst_key="k", max_abs=1.0, max_rel=1.0,
                           limit=0.0, findings=tuple(Finding(kind, "why", ("k",)) for kind in kinds))

    assert verdict().passed and verdict(ROUNDING).passed
    assert not verdict(ROUNDING, DEFECT).passed and verdict(DEFECT, ROUNDING).kind == DEFECT


@pytest.mark.parametrize("name", ["summary.json", "report.json"])
def test_the_committed_reference_runs_verdicts_read_back_as_written(name):
    """logs/reference/ was written by an older run: each of its checks reads back as the verdict it says."""
    with open(os.path.join(PROJECT_ROOT, "logs", "reference", name), encoding="utf-8") as handle:
        written = json.load(handle)
    entries = (written["steps"] if name == "summary.json"
               else [entry for step in written["steps"] for entry in step["dtypes"].values()])
    assert entries and written["passed"] == all_passed(StepVerdict.from_json(entry) for entry in entries)
    for entry in entries:
        verdict = StepVerdict.from_json(entry)
        assert json.loads(json.dumps({**entry, **verdict.as_json()})) == entry, entry


def test_an_older_entry_without_findings_keeps_its_verdict():
    older = {"step": "forward", "case": "rescaled-222px", "dtype": "float32", "worst_key": "h", "max_abs": "nan",
             "max_rel": "nan", "limit": 1e-5, "note": "NaN or Inf in paddle"}
    assert not StepVerdict.from_json({**older, "passed": False}).passed
    assert StepVerdict.from_json({**older, "passed": True}).passed
    rounding = StepVerdict.from_json({**older, "passed": True, "as_rounding": True})
    assert rounding.passed and rounding.as_rounding and rounding.failing_keys == ("h",)


def test_the_committed_report_md_is_rendered_again_from_its_report_json():
    """report.md is rendered from report.json's verdicts and coverage rows read back as dataclasses: the committed
    reference's (an older run's) renders as it was committed, up to the localization (whose layer tables are
    drawn from the run's arrays, not kept)."""
    from alignment.report import render_markdown

    reference = os.path.join(PROJECT_ROOT, "logs", "reference")
    with open(os.path.join(reference, "report.json"), encoding="utf-8") as handle:
        markdown = render_markdown(json.load(handle), {})
    with open(os.path.join(reference, "report.md"), encoding="utf-8") as handle:
        committed = handle.read()
    assert markdown.split("## Localization")[0] == committed.split("## Localization")[0]
