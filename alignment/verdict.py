"""One verdict per check, decided here once: the row the terminal, report.md, report.json, summary.json and
every other reader read.

alignment.check compares a check's keys (each passes or fails against its limit); alignment.diagnosis
names the cause of each failing key (a known library difference, a defect). This module turns the two
into the verdict, with the rounding rule: a float32 forward or backward failure that the same step in
float64 does not share (the suite runs that float64 check itself when the run did not:
float64_checks_needed) and that no Paddle layer shows when fed torch's values (the localization), but
layers that differ so in float64 alike (how the two trees are cut: structural_in_float64), is rounding, a
max-pool's maximum or a ReLU's sign flipped by float32 rounding along the chain. A check
passes when every key passed, or when every finding of its failing keys is rounding; `passed` is that
rule, not a stored flag, so no reader can decide otherwise. A verdict written to JSON (summary.json,
report.json, gpu_check.json) is read back with from_json, an older run's included.
"""
import dataclasses

import numpy as np

from . import known_differences
from .cases import Case
from .check import json_number
from .diagnosis import (DEFECT, KNOWN, ROUNDING, SEVERITY, Finding, float32_of_known_differences, known_findings,
                        loss_finding, unexplained_finding)
from .layers.localize import DIRECTIONS

ROUNDING_REASON = ("float32 only: float64 agrees, and every Paddle layer agrees when fed torch's values{structural} (a"
                   " max-pool or ReLU decision flipped by rounding; docs/tolerances.md)")
STRUCTURAL = (" but {layers}, which differ so in float64 alike, value for value (the two trees cut otherwise: an"
              " activation inside a Paddle layer, concatenations grouped otherwise)")
SHOWN_STRUCTURAL = 3
MEASURES = ("max_abs", "max_rel", "limit")  # the worst key's, as every view prints them


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    """A check's verdict, whatever was compared: its worst key and the findings of its failing keys."""
    worst_key: str
    max_abs: float
    max_rel: float
    limit: float
    note: str = ""  # the worst key's own (alignment.check.KeyResult.note)
    findings: tuple = ()  # of its failing keys, in SEVERITY order, most serious first; none when every key passed

    @property
    def passed(self):
        """Every key passed, or every failing key is explained by rounding."""
        return all(finding.kind == ROUNDING for finding in self.findings)

    @property
    def kind(self):
        """None when every key passed; else the class of its most serious finding."""
        return self.findings[0].kind if self.findings else None

    @property
    def as_rounding(self):
        return self.kind == ROUNDING

    @property
    def failing_keys(self):
        return tuple(key for finding in self.findings for key in finding.keys)

    def word(self):
        """The verdict in one word: pass, rounding (passed as rounding) or FAIL."""
        return "rounding" if self.as_rounding else ("pass" if self.passed else "FAIL")

    def as_json(self):
        return {"passed": self.passed, "as_rounding": self.as_rounding, "kind": self.kind, "worst_key": self.worst_key,
                **{name: json_number(getattr(self, name)) for name in MEASURES},
                "note": self.note, "findings": [dataclasses.asdict(finding) for finding in self.findings]}

    @classmethod
    def fields_of_json(cls, entry):
        """The fields of a verdict as_json wrote; of an older run's without findings, one finding of its class
        (a failing check) naming its worst key."""
        if "findings" in entry:
            findings = tuple(Finding(finding["kind"], finding["reason"], tuple(finding["keys"]))
                             for finding in entry["findings"])
        else:
            kind = ROUNDING if entry.get("as_rounding") else (None if entry["passed"] else entry.get("kind") or DEFECT)
            findings = (Finding(kind, entry.get("note", ""), (entry["worst_key"],)),) if kind else ()
        return {"worst_key": entry["worst_key"], **{name: float(entry[name]) for name in MEASURES},
                "note": entry.get("note", ""), "findings": findings}


@dataclasses.dataclass(frozen=True, kw_only=True)
class StepVerdict(Verdict):
    """The verdict of one of the suite's checks: a step, in one case and precision."""
    step: str
    case: Case
    dtype: str

    @property
    def label(self):
        return f"{self.step} {self.case.label} {self.dtype}"

    def line(self):
        """The check in one line: its verdict, class and why."""
        verdict = "passed as rounding" if self.as_rounding else ("pass" if self.passed else "FAIL")
        return f"{self.label}: {verdict}" + "".join(f"; {finding.text()}" for finding in self.findings)

    def as_json(self):
        return {"step": self.step, "case": self.case.label, "dtype": self.dtype, **super().as_json()}

    @classmethod
    def from_json(cls, entry):
        """The verdict of a summary.json or report.json entry (report.json's also name their diff files)."""
        return cls(step=entry["step"], case=Case.from_label(entry["case"]), dtype=entry["dtype"],
                   **cls.fields_of_json(entry))


def float64_checks_needed(results):
    """{case: [step]}: the float64 checks the rounding rule needs and the run did not make (a float32-only
    run): each failing float32 forward or backward check's own step and case."""
    checked = {(result.step, result.case) for result in results if result.dtype == "float64"}
    needed = {}
    for result in results:
        if (result.dtype == "float32" and not result.passed and result.step in DIRECTIONS
                and (result.step, result.case) not in checked):
            needed.setdefault(result.case, []).append(result.step)
    return needed


def passed_in_float64(results, evidence=()):
    """{(step, case)} of the float64 checks that passed, of the run's and of those made for the rule alone."""
    return {(result.step, result.case) for result in (*results, *evidence)
            if result.dtype == "float64" and result.passed}


def explained_by_rounding(result, float64_passed, localization, structural=()):
    """The rounding rule: a float32 forward or backward failure that float64 does not share (same step, same
    case) and that no layer shows when each Paddle layer is fed torch's values, but the `structural` ones
    (structural_layers): the port computes the same function, and float32 rounding flipped a decision (a
    max-pool's maximum, a ReLU's sign) along the chain."""
    return (result.dtype == "float32" and (result.step, result.case) in float64_passed
            and result.step in DIRECTIONS and localization is not None and not localization.paddle_only
            and set(localization.differing_alone([result.step])) <= set(structural))


def structural_layers(result, float64_passed, localization, float64_localization, evidence):
    """The layers that differ fed torch's values in a float32 check float64 agrees with, and differ so in
    float64 alike (structural_in_float64)."""
    if localization is None or result.dtype != "float32" or (result.step, result.case) not in float64_passed:
        return []
    return [layer for layer in localization.differing_alone([result.step])
            if structural_in_float64(result, layer, localization, float64_localization, evidence)]


def structural_in_float64(result, layer, localization, float64_localization, evidence):
    """Whether `layer`, which differs fed torch's values in a float32 check's direction, differs so in
    float64 alike, value for value within the float32 limit: a difference of how the two trees are cut (an
    activation inside Paddle's BatchNorm that torch runs as a layer of its own, concatenations grouped
    otherwise), which the same values in float64 show as well, not one of float32's precision."""
    if float64_localization is None:
        return False
    for trace in localization.traces_of(result.step):
        row = next((row for row in trace.rows if row.layer == layer and not row.isolated.passed), None)
        if row is None:
            continue
        in_float64 = next((other for other in float64_localization.traces_of(result.step) if other.mode == trace.mode),
                          None)
        if in_float64 is None or all(other.layer != layer or other.isolated.passed for other in in_float64.rows):
            return False
        values = [known_differences.alone_values_of(evidence, dtype, result.case, trace.mode, result.step, layer)
                  for dtype in ("float32", "float64")]
        if None in values or not all(_same_difference(*ends, row.isolated.limit) for ends in zip(*values)):
            return False
    return True


def _same_difference(float32_values, float64_values, limit):
    """Each precision's (key, torch's, Paddle's or None) differ alike: both not computed by Paddle, both of
    the same other shape, or Paddle minus torch the same in both within `limit`."""
    (_, torch32, paddle32), (_, torch64, paddle64) = float32_values, float64_values
    if paddle32 is None or paddle64 is None:
        return paddle32 is None and paddle64 is None
    if paddle32.shape != torch32.shape or paddle64.shape != torch64.shape:
        return (paddle32.shape, torch32.shape) == (paddle64.shape, torch64.shape)
    difference = (paddle32.astype(np.float64) - torch32) - (paddle64.astype(np.float64) - torch64)
    return bool(np.all(np.abs(difference) <= limit))


def _rounding_reason(structural):
    layers = known_differences.a_few(structural, SHOWN_STRUCTURAL)
    return ROUNDING_REASON.format(structural=STRUCTURAL.format(layers=layers) if structural else "")


def findings_of(result, evidence, float64_passed, localizations, decided):
    """The findings of a check's failing keys: the known library differences, then the rest as one finding,
    rounding when the rule holds, else a known difference of the layers, a loss check placed by the forward
    check of its case, a float32 check whose float64 counterpart fails by known differences alone, or a
    defect (alignment.diagnosis); `decided` {(step, dtype, case): StepVerdict} of the checks decided before."""
    failing = [key.name for key in result.keys if not key.passed]
    findings = known_findings(result, failing, evidence)
    explained = {name for finding in findings for name in finding.keys}
    unexplained = tuple(key for key in failing if key not in explained)
    localization = localizations.get((result.dtype, result.case))
    structural = structural_layers(result, float64_passed, localization,
                                   localizations.get(("float64", result.case)), evidence) if unexplained else []
    forward = decided.get(("forward", result.dtype, result.case))
    in_float64 = decided.get((result.step, "float64", result.case)) if result.dtype == "float32" else None
    if unexplained and explained_by_rounding(result, float64_passed, localization, structural):
        findings.append(Finding(ROUNDING, _rounding_reason(structural), unexplained))
    elif unexplained and result.step == "loss" and forward is not None:
        findings.append(loss_finding(unexplained, forward))
    elif unexplained and in_float64 is not None and in_float64.kind == KNOWN:
        findings.append(float32_of_known_differences(unexplained, in_float64))
    elif unexplained:
        float64_agrees = result.dtype == "float32" and (result.step, result.case) in float64_passed
        findings.append(unexplained_finding(result, unexplained, evidence, float64_agrees, localization, structural))
    return tuple(sorted(findings, key=lambda finding: -SEVERITY.index(finding.kind)))


def verdict_of(result, evidence, float64_passed, localizations, decided):
    """The StepVerdict of one StepResult (alignment.check); `localizations` {(dtype, case): Localization},
    `decided` the verdicts decided before (findings_of)."""
    worst = result.worst()
    findings = () if result.passed else findings_of(result, evidence, float64_passed, localizations, decided)
    return StepVerdict(step=result.step, case=result.case, dtype=result.dtype, worst_key=worst.name,
                       max_abs=worst.max_abs, max_rel=worst.max_rel, limit=worst.limit, note=worst.note,
                       findings=findings)


def _deciding_order(result):
    """float64 before float32 and the forward step first in each: a float32 check reads its float64
    counterpart's verdict, a loss check its case's forward verdict."""
    return result.dtype != "float64", result.step != "forward"


def verdicts(results, localizations, evidence=None, float64_evidence=()):
    """The StepVerdict of every check of `results` (StepResults), with the layer localizations ({(dtype, case):
    Localization}), the run's values (known_differences.Evidence; None: no known difference is looked for)
    and the float64 checks made for the rounding rule alone (`float64_evidence`, not verdicts themselves)."""
    float64_passed = passed_in_float64(results, float64_evidence)
    decided = {}
    for result in sorted(results, key=_deciding_order):
        decided[(result.step, result.dtype, result.case)] = verdict_of(result, evidence, float64_passed,
                                                                       localizations, decided)
    return [decided[(result.step, result.dtype, result.case)] for result in results]


def all_passed(rows):
    """The run's verdict from its checks' (Verdicts)."""
    return all(row.passed for row in rows)


def _text(value):
    """A cell's text: a case (alignment.cases.Case) by its label."""
    return value.label if hasattr(value, "label") else str(value)


def verdict_table(rows, columns):
    """Verdicts as a terminal table: the `columns` [(field, width)] that say what was compared, then the
    verdict, the worst key, its max abs and max rel difference, the limit and any note."""
    def cells(values):
        return " ".join(f"{value:<{width}}" for value, width in values)

    header = (cells([(key, width) for key, width in columns] + [("verdict", 8), ("worst key", 34)])
              + "".join(f" {name:>10}" for name in ("max abs", "max rel", "limit")))
    lines = [header, "-" * len(header)]
    for row in rows:
        kind = None if row.as_rounding else row.kind
        note = "; ".join(part for part in (kind, row.note if not kind else "") if part)
        lines.append(cells([(_text(getattr(row, key))[:width], width) for key, width in columns]
                           + [(row.word(), 8), (row.worst_key[:34], 34)])
                     + "".join(f" {getattr(row, name):>10.3g}" for name in MEASURES)
                     + (f"  {note}" if note else ""))
    return "\n".join(lines)
