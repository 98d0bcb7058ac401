"""The mutation score of a run, per operator and per layer, with every survivor explained.

Written once, without a framework: it reads the outcomes the Paddle processes wrote
(alignment/mutation/worker.py) and the coverage table of the unmutated run (alignment/coverage.py).
"""
import dataclasses
import json
import os

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import UserInputError, one_line_reason

from ..pairs import DEFAULT_PAIR
from .catalog import CATALOG
from .files import REPORT_MD, SUMMARY_JSON

# The first mutant of every run changes nothing: the mutant runner must pass the unmutated port and
# reproduce its values bit for bit, or its kills would prove nothing
CONTROL = {"id": "control (no mutation)", "operator": "control", "place": "", "seam": "control",
           "description": "nothing changed", "needs": None, "not_viable": None}
def reference_summary(pair_name):
    """The committed score of a pair, relative to the project: logs/reference/mutants/ (GreedyHash's),
    logs/reference/mutants-<pair>/ (another pair's)."""
    folder = "mutants" if pair_name == DEFAULT_PAIR else f"mutants-{pair_name}"
    return os.path.join("logs", "reference", folder, SUMMARY_JSON)
KILLED, SURVIVED, EQUIVALENT = "killed", "survived", "equivalent"
SIDE_FAILED = "(side failed)"
NO_REFERENCE = "none"


def _counts(outcomes):
    return {status: sum(outcome["status"] == status for outcome in outcomes)
            for status in (KILLED, SURVIVED, EQUIVALENT)}


def score_of(counts):
    scored = counts[KILLED] + counts[SURVIVED]
    return counts[KILLED] / scored if scored else None


def _grouped(outcomes, mutants, key):
    groups = {}
    for mutant in mutants:
        groups.setdefault(mutant[key], {"mutants": 0, KILLED: 0, SURVIVED: 0, EQUIVALENT: 0, "not_viable": 0})
        groups[mutant[key]]["mutants"] += 1
        groups[mutant[key]]["not_viable"] += bool(mutant["not_viable"])
    for outcome in outcomes:
        groups[outcome[key]][outcome["status"]] += 1
    for counts in groups.values():
        counts["score"] = score_of(counts)
    return groups


def explain(outcome, coverage_by_layer):
    """Why no check saw a survivor: the coverage gap its operator needs filled, or else how close the
    nearest check came to its limit; and the probe that tells it from the port."""
    row, needs, reasons = coverage_by_layer.get(outcome["place"]), outcome["needs"], []
    if needs and row is not None:
        met = row.criteria.get(needs, [])
        reasons.append(f"coverage: {needs} met in {', '.join(met)}" if met
                       else f"coverage gap: no case has {needs} at {outcome['place']}")
    elif row is not None and row.gaps:
        reasons.append(f"coverage gaps at {outcome['place']}: {', '.join(row.gaps)}")
    moved, closest = outcome.get("moved"), outcome["closest"]
    if moved is None:
        reasons.append("at the run's inputs every checked value is bit for bit the unmutated port's")
    else:
        reasons.append(f"it moved {moved['step']} {moved['case']} {moved['key']} by {moved['max_rel']:.2g}"
                       f" (relative) at most, within tolerance: nearest check {closest['step']} {closest['case']}"
                       f" {closest['key']} at {_ratio(closest['excess'])} of its limit")
    difference = outcome.get("probe_difference")
    if difference:
        reasons.append(f"differs from the port on the probe '{difference['probe']}' ({difference['step']}"
                       f" {difference['case']} {difference.get('key', difference.get('note'))})")
    return "; ".join(reasons)


def _ratio(value):
    return f"{value:.2g}x" if isinstance(value, (int, float)) else str(value)


def summarize(outcomes, mutants, coverage_rows, settings, seconds):
    control, scored = outcomes[0], outcomes[1:]
    coverage_by_layer = {row.layer: row for row in coverage_rows}
    counts = _counts(scored)
    selected_ids = {outcome["id"] for outcome in scored}
    selected = [mutant for mutant in mutants if mutant["id"] in selected_ids or mutant["not_viable"]]
    by_operator = _grouped(scored, selected, "operator")
    return {
        "score": score_of(counts), **counts, "not_viable": sum(bool(mutant["not_viable"]) for mutant in mutants),
        "listed": len(mutants), "checked": len(scored), "seconds": round(seconds),
        "control_failed": control["status"] != SURVIVED or control.get("moved") is not None, "control": control,
        "settings": settings,
        "operators": [{**dataclasses.asdict(spec), "places": sum(mutant["operator"] == spec.name for mutant in mutants),
                       **by_operator.get(spec.name, {"mutants": 0})} for spec in CATALOG],
        "layers": _grouped(scored, [mutant for mutant in selected if not mutant["not_viable"]], "place"),
        "killed_by_a_failing_side": sum(outcome.get("by", {}).get("key") == SIDE_FAILED for outcome in scored),
        "survivors": [{**outcome, "why": explain(outcome, coverage_by_layer)} for outcome in scored
                      if outcome["status"] == SURVIVED],
        "equivalent_mutants": [outcome for outcome in scored if outcome["status"] == EQUIVALENT],
        "not_viable_mutants": [mutant for mutant in mutants if mutant["not_viable"]],
        "killed_mutants": [outcome for outcome in scored if outcome["status"] == KILLED],
    }


def score_line(summary):
    score = summary["score"]
    text = (f"mutation score {'n/a' if score is None else f'{score:.1%}'}: {summary[KILLED]} killed,"
            f" {summary[SURVIVED]} survived of {summary[KILLED] + summary[SURVIVED]} (not counted:"
            f" {summary[EQUIVALENT]} equivalent, {summary['not_viable']} not viable); {summary['checked']} of"
            f" {summary['listed']} mutants checked in {summary['seconds']} s")
    if summary["control_failed"]:
        text += ("; THE CONTROL FAILED: the mutant runner does not reproduce the unmutated port, no kill means"
                 " anything")
    return text


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _score_cell(counts):
    return "" if counts.get("score") is None else f"{counts['score']:.0%}"


def _by(outcome):
    by = outcome["by"]
    return f"{by['step']} {by['case']} `{by['key']}`" + (f" ({by['note']})" if by.get("note") else "")


def _operator_row(operator):
    not_viable = operator.get("not_viable", 0)
    return (f"`{operator['name']}`", operator["seam"], operator["places"], operator["mutants"] - not_viable,
            operator.get(KILLED, 0), operator.get(SURVIVED, 0), operator.get(EQUIVALENT, 0), not_viable,
            _score_cell(operator), operator["description"])


def render_markdown(summary):
    lines = ["# Mutation score", "", score_line(summary) + ".", "",
             "Regenerate: `make align-mutants` (a committed folder: `make align-mutants-reference`, with"
             " MODEL=<name> for logs/reference/mutants-<name>/). What an operator"
             " does and how a survivor is explained: docs/alignment.md, Mutation score.", "",
             f"Settings: `{json.dumps(summary['settings'])}`", "", "## Per operator", ""]
    lines += _table(("operator", "seam", "places", "checked", "killed", "survived", "equivalent", "not viable",
                     "score", "what it changes"),
                    [_operator_row(operator) for operator in summary["operators"]])
    lines += ["", "## Per layer", ""]
    lines += _table(("place", "mutants", "killed", "survived", "equivalent", "score"),
                    [(f"`{place}`", counts["mutants"], counts[KILLED], counts[SURVIVED], counts[EQUIVALENT],
                      _score_cell(counts)) for place, counts in summary["layers"].items()])
    lines += ["", "## Survivors", ""]
    lines += (_table(("mutant", "what it changed", "why no check saw it"),
                     [(f"`{item['id']}`", item["description"], item["why"]) for item in summary["survivors"]])
              if summary["survivors"] else ["None."])
    lines += ["", "## Equivalent to the port (not counted)", ""]
    lines += (_table(("mutant", "what it changed", "why"),
                     [(f"`{item['id']}`", item["description"], item["why"]) for item in summary["equivalent_mutants"]])
              if summary["equivalent_mutants"] else ["None."])
    lines += ["", "## Not viable: the port no longer runs (not counted)", ""]
    lines += (_table(("mutant", "why"), [(f"`{item['id']}`", item["not_viable"])
                                         for item in summary["not_viable_mutants"]])
              if summary["not_viable_mutants"] else ["None."])
    lines += ["", "## Killed, by the first check that failed", ""]
    lines += _table(("mutant", "check", "difference / limit", "seconds"),
                    [(f"`{item['id']}`", _by(item), _ratio(item["by"].get("excess", "")), item["seconds"])
                     for item in summary["killed_mutants"]])
    return "\n".join(lines) + "\n"


def terminal_lines(summary):
    lines = [f"{'operator':<28} {'places':>6} {'killed':>6} {'survived':>8} {'equiv.':>6} {'n/viable':>8}"]
    lines += [f"{op['name']:<28} {op['places']:>6} {op.get(KILLED, 0):>6} {op.get(SURVIVED, 0):>8}"
              f" {op.get(EQUIVALENT, 0):>6} {op.get('not_viable', 0):>8}" for op in summary["operators"]]
    lines += [f"survived: {item['id']}: {item['why']}" for item in summary["survivors"]]
    lines += [f"equivalent: {item['id']}: {item['why']}" for item in summary["equivalent_mutants"]]
    return lines + [score_line(summary)]


def write_outputs(workdir, summary):
    """Write mutation.json and mutation.md into `workdir`; return what the terminal shows."""
    write_text(os.path.join(workdir, SUMMARY_JSON), json.dumps(summary, indent=1, default=str) + "\n")
    write_text(os.path.join(workdir, REPORT_MD), render_markdown(summary))
    return "\n".join(terminal_lines(summary) + [f"report: {os.path.join(workdir, REPORT_MD)}"])


def read_summary(path):
    """A mutation run's summary (mutation.json), or UserInputError naming the file if it is not one."""
    try:
        with open(path, encoding="utf-8") as handle:
            summary = json.load(handle)
        if not isinstance(summary, dict) or not isinstance(summary.get("settings"), dict) or not (
                summary.get("score") is None or isinstance(summary["score"], (int, float))):
            raise ValueError("no score and settings")
        return summary
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserInputError(f"{path}: not a mutation run's summary ({one_line_reason(error)})") from None


def compare_with_reference(summary, reference_path):
    """A message if the score is below the reference's for the same settings, else None (also when the
    reference is `none`: a run that makes the reference compares with nothing)."""
    if reference_path == NO_REFERENCE or not os.path.isfile(reference_path):
        return None
    reference = read_summary(reference_path)
    if reference["settings"] != summary["settings"] or reference["score"] is None:
        return None
    if summary["score"] is None or summary["score"] < reference["score"] - 1e-12:
        return (f"mutation score {summary['score']} below the committed {reference['score']:.1%}"
                f" ({reference_path}): a change made the suite miss defects it used to catch")
    return None


def reference_score_line(path):
    """The score line of a finished mutation run's summary at `path`, or None when there is none."""
    if not os.path.isfile(path):
        return None
    try:
        return score_line(read_summary(path))
    except (UserInputError, KeyError, TypeError) as error:
        return f"unreadable: {error}"
