"""Every failing check diagnosed, once: the verdict row the terminal, report.md and report.json read.

Each failing key gets one class (docs/alignment.md, Reading the results):

- a known library difference: torch and Paddle do the same thing differently, recognised by what the
  values do (never by the model's name) and named with its correction (alignment.known_differences);
- rounding: a float32 forward or backward failure that the same step in float64 does not share (the
  suite runs that float64 check itself when the run did not: float64_checks_needed) and that no Paddle
  layer shows when fed torch's values (the localization), but for layers that differ so in float64 alike
  (a difference of how the two trees are cut: structural_in_float64): a max-pool's maximum or a ReLU's
  sign flipped by float32 rounding along the chain;
- a defect: anything else, at the localization's first divergence when the step was localized.

A fourth class, the checking artifact (a reference that is zero up to rounding, once held to
atol + rtol * 0), is removed where keys are compared (alignment.check.ZERO_REFERENCE): such a key is held
to its operation's scale and fails only where it really differs (docs/tolerances.md, Zero references).
"""
import dataclasses

import numpy as np

from . import known_differences
from .check import json_number
from .layers.localize import DIRECTIONS

DEFECT, ROUNDING, KNOWN = "defect", "rounding", "known library difference"
SEVERITY = (ROUNDING, KNOWN, DEFECT)  # a check's class: the most serious of its keys'
EXAMPLE_KEYS = 3  # failing keys a line names before "and N more"

ROUNDING_REASON = ("float32 only: float64 agrees, and every Paddle layer agrees when fed torch's values{structural} (a"
                   " max-pool or ReLU decision flipped by rounding; docs/tolerances.md)")
STRUCTURAL = (" but {layers}, which differ so in float64 alike, value for value (the two trees cut otherwise: an"
              " activation inside a Paddle layer, concatenations grouped otherwise)")
SHOWN_STRUCTURAL = 3
FLOAT64_AGREES_HINT = "float64 agrees, but a Paddle layer differs fed torch's values in float32"
UNPAIRED_HINT = ("float64 agrees, but Paddle units no torch unit pairs with were not compared fed torch's values, so"
                 " rounding cannot be shown")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One cause of a check's failure and the keys it explains."""
    kind: str
    reason: str
    keys: tuple

    def text(self):
        return f"{self.kind.upper()}: {self.reason} [{known_differences.a_few(self.keys, EXAMPLE_KEYS)}]"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One check (a step, in one case and precision): decided once, read by every view of the run."""
    step: str
    case: object  # alignment.cases.Case
    dtype: str
    passed: bool  # passed outright, or every failing key explained by rounding
    worst_key: str
    max_abs: float
    max_rel: float
    limit: float
    note: str  # the worst key's own (alignment.check.KeyResult.note)
    findings: tuple = ()  # of its failing keys, in SEVERITY order, most serious first

    @property
    def label(self):
        return f"{self.step} {self.case.label} {self.dtype}"

    @property
    def kind(self):
        """None when every key passed; else the class of its most serious finding."""
        return self.findings[0].kind if self.findings else None

    @property
    def as_rounding(self):
        return self.kind == ROUNDING

    def line(self):
        """The check in one line: its verdict, class and why."""
        verdict = "passed as rounding" if self.as_rounding else ("pass" if self.passed else "FAIL")
        return f"{self.label}: {verdict}" + "".join(f"; {finding.text()}" for finding in self.findings)

    def as_json(self):
        return {"step": self.step, "case": self.case.label, "dtype": self.dtype, "passed": self.passed,
                "as_rounding": self.as_rounding, "kind": self.kind, "worst_key": self.worst_key,
                **{name: json_number(getattr(self, name)) for name in ("max_abs", "max_rel", "limit")},
                "note": self.note, "findings": [dataclasses.asdict(finding) for finding in self.findings]}


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


def _passed_in_float64(results, evidence):
    return {(result.step, result.case) for result in (*results, *evidence)
            if result.dtype == "float64" and result.passed}


def explained_by_rounding(result, passed_in_float64, localization, structural=()):
    """A float32 forward or backward failure that float64 does not share (same step, same case) and that
    no layer shows when each Paddle layer is fed torch's values, but the `structural` ones
    (structural_layers): the port computes the same function, and float32 rounding flipped a decision (a
    max-pool's maximum, a ReLU's sign) along the chain."""
    return (result.dtype == "float32" and (result.step, result.case) in passed_in_float64
            and result.step in DIRECTIONS and localization is not None and not localization.paddle_only
            and set(localization.differing_alone([result.step])) <= set(structural))


def structural_layers(result, passed_in_float64, localization, float64_localization, evidence):
    """The layers that differ fed torch's values in a float32 check float64 agrees with, and differ so in
    float64 alike (structural_in_float64)."""
    if localization is None or result.dtype != "float32" or (result.step, result.case) not in passed_in_float64:
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


def _structural(layers):
    return STRUCTURAL.format(layers=known_differences.a_few(layers, SHOWN_STRUCTURAL)) if layers else ""


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


def _defect_reason(result, keys, localization, structural=()):
    """Where a defect starts: the localization's first divergence in the step's direction, else what the
    keys' comparison said (a shape, a NaN, a missing key) or that they differ beyond their limits. The
    `structural` layers (structural_in_float64) are left out of the layers that differ fed torch's values."""
    if localization is None or result.step not in DIRECTIONS:
        notes = dict.fromkeys(key.note for key in result.keys if key.name in keys and key.note)
        return "; ".join(notes) or "differs beyond its limit"
    for trace in localization.traces_of(result.step):
        divergence = trace.divergence(structural)
        if divergence:
            row, place = divergence
            where = f"before {row.layer}" if place == "before" else f"at {_unit(row)}"
            alone = ", ".join(trace.isolated_failures(structural)) or "none"
            left_out = f" ({len(structural)} more that differ so in float64 alike)" if structural else ""
            return (f"first divergence {where}, {trace.mode} mode; layers that differ fed torch's values:"
                    f" {alone}{left_out}")
    if localization.paddle_only:
        return f"paddle layers no torch layer pairs with: {', '.join(localization.paddle_only)}"
    return "differs beyond its limit; every layer agrees (the difference is outside the layers)"


def _unit(row):
    """A layer as the headline names it: its kinds, how the operators differ, the Paddle lines that made and
    called it (unknown for a model built before the suite saw it: "?")."""
    lines = [f"made at {row.source}" if row.source and row.source != "?" else "",
             f"called at {row.called_at}" if row.called_at else ""]
    kinds = row.types + (f": {row.operator}" if row.operator else "")
    return f"{row.layer} ({'; '.join(filter(None, [kinds, *lines]))})"


def _findings(result, evidence, passed_in_float64, localizations):
    failing = [key.name for key in result.keys if not key.passed]
    found = known_differences.of_keys(result, failing, evidence)
    unexplained = [key for key in failing if key not in {name for finding in found for name in finding[1]}]
    findings = [Finding(KNOWN, reason, tuple(keys)) for reason, keys in found]
    if unexplained:
        findings.append(_unexplained(result, tuple(unexplained), evidence, passed_in_float64, localizations))
    return tuple(sorted(findings, key=lambda finding: -SEVERITY.index(finding.kind)))


def _unexplained(result, keys, evidence, passed_in_float64, localizations):
    localization = localizations.get((result.dtype, result.case))
    structural = structural_layers(result, passed_in_float64, localization,
                                   localizations.get(("float64", result.case)), evidence)
    if explained_by_rounding(result, passed_in_float64, localization, structural):
        return Finding(ROUNDING, ROUNDING_REASON.format(structural=_structural(structural)), keys)
    layers = known_differences.of_layers(result, localization, evidence)
    if layers:
        return Finding(KNOWN, "; ".join(layers), keys)
    reason = _defect_reason(result, keys, localization, structural)
    if result.dtype == "float32" and (result.step, result.case) in passed_in_float64:
        reason += f" ({UNPAIRED_HINT if localization and localization.paddle_only else FLOAT64_AGREES_HINT})"
    return Finding(DEFECT, reason, keys)


def verdict_of(result, evidence, passed_in_float64, localizations):
    worst = result.worst()
    findings = () if result.passed else _findings(result, evidence, passed_in_float64, localizations)
    passed = result.passed or all(finding.kind == ROUNDING for finding in findings)
    return Verdict(result.step, result.case, result.dtype, passed, worst.name, worst.max_abs, worst.max_rel,
                   worst.limit, worst.note, findings)


def verdicts(results, localizations, evidence=None, float64_evidence=()):
    """The Verdict of every check of `results` (StepResults), with the layer localizations ({(dtype, case):
    Localization}), the run's values (known_differences.Evidence; None: no known difference is looked for)
    and the float64 checks made for the rounding rule alone (`float64_evidence`, not verdicts themselves)."""
    passed_in_float64 = _passed_in_float64(results, float64_evidence)
    return [verdict_of(result, evidence, passed_in_float64, localizations) for result in results]


def all_passed(rows):
    """The run's verdict from its checks' (Verdicts)."""
    return all(row.passed for row in rows)
