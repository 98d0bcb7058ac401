"""The cause of each failing key of a check: the findings alignment.verdict turns into the check's verdict.

Each failing key gets one class (docs/alignment.md, Reading the results):

- a known library difference: torch and Paddle do the same thing differently, recognised by what the
  values do (never by the model's name) and named with its correction (alignment.known_differences);
- rounding: the rounding rule's (alignment.verdict.explained_by_rounding);
- a defect: anything else, at the localization's first divergence when the step was localized.

A fourth class, the checking artifact (a reference that is zero up to rounding, once held to
atol + rtol * 0), is removed where keys are compared (alignment.check.ZERO_REFERENCE): such a key is held
to its operation's scale and fails only where it really differs (docs/tolerances.md, Zero references).
"""
import dataclasses

from . import known_differences
from .layers.localize import DIRECTIONS

DEFECT, ROUNDING, KNOWN = "defect", "rounding", "known library difference"
SEVERITY = (ROUNDING, KNOWN, DEFECT)  # a check's class: the most serious of its keys'
EXAMPLE_KEYS = 3  # failing keys a line names before "and N more"

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


# A loss check is placed by the forward check of its case: the loss step computes the loss terms from the
# outputs the forward step compares (alignment/steps/loss.py)
LOSS_OF_AGREEING_OUTPUTS = ("the model's outputs agree (the forward check of this case passes), the loss"
                            " computed from them does not: the Paddle side's loss function differs")
LOSS_OF_KNOWN_DIFFERENCES = ("the model's outputs differ by the known library differences of the forward check"
                             " of this case, and the loss follows them")
LOSS_OF_DIFFERING_OUTPUTS = ("the model's outputs already differ beyond their limits (the forward check of"
                             " this case): the loss follows them")


def loss_finding(keys, forward):
    """The finding of a loss check's failing `keys` by the verdict of the forward check of its case: the loss
    function when the outputs agree, else whatever made the outputs differ."""
    if forward.passed:
        return Finding(DEFECT, LOSS_OF_AGREEING_OUTPUTS, keys)
    if forward.kind == KNOWN:
        return Finding(KNOWN, LOSS_OF_KNOWN_DIFFERENCES, keys)
    return Finding(DEFECT, LOSS_OF_DIFFERING_OUTPUTS, keys)


def float32_of_known_differences(keys, in_float64):
    """The finding of a float32 check's failing `keys` that the rounding rule cannot judge since its float64
    counterpart (`in_float64`, a StepVerdict) fails, by known library differences alone: those, named as
    float64's line begins them."""
    names = dict.fromkeys(finding.reason.split(":")[0] for finding in in_float64.findings if finding.kind == KNOWN)
    return Finding(KNOWN, f"float64 fails by known library differences alone ({'; '.join(names)}), which float32"
                          " shares: correct them, and float32 is checked for rounding", keys)


def _defect_reason(result, keys, localization, structural=()):
    """Where a defect starts: the localization's first divergence in the step's direction, else what the
    keys' comparison said (a shape, a NaN, a missing key) or that they differ beyond their limits. The
    `structural` layers (alignment.verdict.structural_in_float64) are left out of the layers that differ
    fed torch's values."""
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


def known_findings(result, failing, evidence):
    """[Finding] of the known library differences the values of `failing` keys show (alignment.known_differences)."""
    return [Finding(KNOWN, reason, tuple(keys)) for reason, keys in known_differences.of_keys(result, failing, evidence)]


def unexplained_finding(result, keys, evidence, float64_agrees, localization, structural=()):
    """The finding of the failing `keys` that no known difference of their values and no rounding explain: a
    known difference of the layers, else a defect at the localization's first divergence (`structural`: the
    layers left out of it); `float64_agrees`: the same step in float64 passed, so the hint says why rounding
    was not shown."""
    layers = known_differences.of_layers(result, localization, evidence)
    if layers:
        return Finding(KNOWN, "; ".join(layers), keys)
    reason = _defect_reason(result, keys, localization, structural)
    if float64_agrees:
        reason += f" ({UNPAIRED_HINT if localization and localization.paddle_only else FLOAT64_AGREES_HINT})"
    return Finding(DEFECT, reason, keys)
