"""Compare the torch and Paddle values of one step and decide, without reprod_log's defects.

reprod_log passes a NaN difference, silently transposes or broadcasts mismatched shapes, applies one
absolute threshold to every key and returns no verdict. Here: any NaN or Inf fails, any shape or
dtype mismatch fails, a missing or extra key fails, tolerances are per key (alignment.tolerances),
and the verdict is returned, written to JSON, and turned into an exit status by the caller.
"""
import dataclasses
import json
import math
import re
import time

import numpy as np

from greedyhash_common.infra.atomic import atomic_path, write_text

from .tolerances import Tolerance, tolerance

SERIES_LENGTH = 64  # 1-D keys up to this length (per-iteration losses, rates) get every difference in the JSON
# A key whose reference is zero within the tolerance of its operation's values (docs/tolerances.md, Zero
# references): held to that operation's scale, not to atol + rtol * 0
ZERO_REFERENCE = "reference zero at its operation's scale"


@dataclasses.dataclass
class KeyResult:
    name: str
    shape: list
    max_abs: float
    mean_abs: float
    max_rel: float
    atol: float
    rtol: float
    limit: float  # the largest max_abs allowed: atol + rtol * max |torch|
    passed: bool
    note: str = ""
    per_element: list = None  # |paddle - torch| element by element, for short series (per-iteration losses)
    port_shape: list = None  # Paddle's shape, when it differs from torch's

    def excess(self):
        """The worst difference as a multiple of the limit: above 1 fails."""
        if not math.isfinite(self.max_abs):
            return math.inf
        return self.max_abs / self.limit if self.limit else (0.0 if self.max_abs == 0 else math.inf)


@dataclasses.dataclass
class StepResult:
    step: str
    dtype: str
    keys: list
    case: object = None  # the alignment.cases.Case checked

    @property
    def passed(self):
        return all(key.passed for key in self.keys)

    def worst(self):
        failing = [key for key in self.keys if not key.passed]
        return max(failing or self.keys, key=KeyResult.excess) if self.keys else None


def failed_key(name, shape, note, port_shape=None):
    """A key that could not be compared (missing, shape, dtype, NaN, a side that never sent it): failed."""
    return KeyResult(name, list(shape), math.nan, math.nan, math.nan, 0.0, 0.0, 0.0, False, note,
                     port_shape=port_shape)


def _structural_problem(reference, port):
    if reference.shape != port.shape:
        return f"shape differs: torch {reference.shape}, paddle {port.shape}"
    if reference.dtype != port.dtype:
        return f"dtype differs: torch {reference.dtype}, paddle {port.dtype}"
    return ""


def _not_finite(reference, port):
    bad = [side for side, array in (("torch", reference), ("paddle", port))
           if np.issubdtype(array.dtype, np.number) and not np.all(np.isfinite(array))]
    return f"NaN or Inf in {' and '.join(bad)}" if bad else ""


def largest_magnitude(array):
    """max |array|; for floats from two reductions, without the temporary array |array| would be (a float64
    AlexNet's largest weight is 300 MB)."""
    if not array.size or not np.issubdtype(array.dtype, np.number):
        return 0.0
    if np.issubdtype(array.dtype, np.floating):
        return abs(float(np.maximum(array.max(), -array.min())))  # NaN as np.abs would give it
    return float(np.max(np.abs(array)))


def compare_arrays(name, reference, port, tol, operation_scale=0.0):
    """`operation_scale`: the largest |torch| of the values the same operation produced (the layer's, see
    operation_scales); a reference that is zero next to it (within the tolerance of that scale) is held to
    the tolerance of that scale: its true value is 0, and both sides' are rounding of the operation."""
    problem = _structural_problem(reference, port)
    if problem:
        return failed_key(name, reference.shape, problem, list(port.shape) if reference.shape != port.shape else None)
    if not np.issubdtype(reference.dtype, np.floating):
        tol, operation_scale = Tolerance(0.0, 0.0), 0.0  # labels, indices, flags: equal or wrong
    # one array the size of the key, not three; in C order whatever order the sides sent (the mean's sum too)
    difference = np.asarray(np.subtract(reference, port, dtype=np.float64, order="C"))
    np.abs(difference, out=difference)
    max_abs = float(difference.max()) if difference.size else 0.0
    if not math.isfinite(max_abs):  # NaN and Inf carry into the largest difference (overflow aside)
        problem = _not_finite(reference, port)
        if problem:
            return failed_key(name, reference.shape, problem)
    scale = largest_magnitude(reference)
    max_rel = max_abs / scale if scale else (0.0 if max_abs == 0 else math.inf)
    limit, note = tol.limit(scale), ""
    if scale < operation_scale and scale <= tol.rtol * operation_scale:
        limit = tol.limit(operation_scale)
        note = f"{ZERO_REFERENCE}: limit from its operation's scale {operation_scale:.3g}"
    series = difference.tolist() if difference.ndim == 1 and difference.size <= SERIES_LENGTH else None
    return KeyResult(name, list(reference.shape), max_abs, float(difference.mean()) if difference.size else 0.0,
                     max_rel, tol.atol, tol.rtol, limit, max_abs <= limit, note=note, per_element=series)


def operation_of(key):
    """The operation a key's values come from: its layer, the key without its last part ("grad.layer1.0.bn1"
    of "grad.layer1.0.bn1.bias"); None for a key of the model's own outputs ("logits")."""
    operation = key.rpartition(".")[0]
    return operation or None


def operation_scales(values):
    """{operation: largest |value| over its keys} of one side's values (the reference's)."""
    scales = {}
    for key, array in values.items():
        operation = operation_of(key)
        if operation is not None and np.issubdtype(np.asarray(array).dtype, np.floating):
            scales[operation] = max(scales.get(operation, 0.0), largest_magnitude(np.asarray(array)))
    return scales


def compare_codes(name, reference, port, continuous_reference, continuous_tol):
    """Codes must be identical, except a flip where |h| is within h's own tolerance of zero: there the
    sign is decided by rounding, not by the port, and the flip is reported, not failed."""
    result = compare_arrays(name, reference, port, Tolerance(0.0, 0.0))
    if result.passed or not math.isfinite(result.max_abs):
        return result
    near_zero = np.abs(continuous_reference) <= continuous_tol.limit(float(np.max(np.abs(continuous_reference))))
    flips = reference != port
    unexplained = int(np.count_nonzero(flips & ~near_zero))
    result.passed = unexplained == 0
    result.note = (f"{int(np.count_nonzero(flips & near_zero))} sign flips where |h| is within tolerance of 0"
                   + (f"; {unexplained} flips where |h| is not" if unexplained else ""))
    return result


def invariant_name(first, second, side):
    return f"{first} == {second} ({side})"


INVARIANT_NAME = re.compile(r"(.+) == (.+) \((torch|paddle)\)")  # what invariant_name writes


def compare_invariant(first, second, values, side):
    """Two keys of one side's own file that must be equal exactly."""
    return compare_arrays(invariant_name(first, second, side), values[first], values[second], Tolerance(0.0, 0.0))


def keys_compared(name):
    """The keys of the sides' values a checked key's result was computed from: its own, or an invariant's two."""
    invariant = INVARIANT_NAME.fullmatch(name)
    return invariant.groups()[:2] if invariant else (name,)


def check_step(step, dtype, torch_values, paddle_values, code_keys=None, invariants=(), overrides=None,
               port_kept=None):
    """The StepResult of one step's values; `overrides`: a pair's own tolerances (alignment.tolerances).
    `paddle_values`: {key: array}, or (key, array) pairs as a side sends them: each is compared as it comes
    and dropped, unless an invariant reads it or it fails, so that a checker holds the reference's values
    and not the port's too (a float64 training step's are 915 MB a side); `port_kept`: a dict that receives
    the port's arrays of the keys that failed."""
    code_keys, port_kept = code_keys or {}, {} if port_kept is None else port_kept
    scales = operation_scales(torch_values)
    invariant_keys = {key for pair in invariants for key in pair}
    compared, missing_in_torch, port_invariant_values, port_keys = {}, [], {}, set()
    for key, port in (paddle_values.items() if isinstance(paddle_values, dict) else paddle_values):
        port_keys.add(key)
        if key not in torch_values:
            missing_in_torch.append(failed_key(key, port.shape, "missing in torch"))
        elif key in code_keys:
            continuous = code_keys[key]
            compared[key] = compare_codes(key, torch_values[key], port, torch_values[continuous],
                                          tolerance(step, dtype, continuous, overrides))
        else:
            compared[key] = compare_arrays(key, torch_values[key], port, tolerance(step, dtype, key, overrides),
                                           scales.get(operation_of(key), 0.0))
        if key in invariant_keys:
            port_invariant_values[key] = port
        if key not in torch_values or not compared[key].passed:
            port_kept[key] = port
        del port  # not held while the next one is read
    results = [failed_key(key, torch_values[key].shape, "missing in paddle") for key in torch_values
               if key not in port_keys]
    results += missing_in_torch + [compared[key] for key in torch_values if key in compared]
    for side, values in (("torch", torch_values), ("paddle", port_invariant_values)):
        for first, second in invariants:
            if first in values and second in values:
                results.append(compare_invariant(first, second, values, side))
                if side == "paddle" and not results[-1].passed:
                    port_kept.update({first: values[first], second: values[second]})
    return StepResult(step, dtype, results)


def json_number(value):
    return value if math.isfinite(value) else str(value)


def result_as_json(result, env):
    return {
        "step": result.step,
        "dtype": result.dtype,
        "passed": result.passed,
        "env": env,
        "keys": {
            key.name: {"shape": key.shape, "max_abs": json_number(key.max_abs),
                       "mean_abs": json_number(key.mean_abs), "max_rel": json_number(key.max_rel),
                       "atol": key.atol, "rtol": key.rtol, "limit": key.limit, "passed": key.passed,
                       **({"note": key.note} if key.note else {}),
                       **({"per_element_abs": key.per_element} if key.per_element is not None else {})}
            for key in result.keys
        },
    }


def key_from_json(name, entry):
    """The KeyResult result_as_json wrote (a NaN difference written as "nan" read back as a number)."""
    return KeyResult(name, entry["shape"], *(float(entry[field]) for field in ("max_abs", "mean_abs", "max_rel")),
                     entry["atol"], entry["rtol"], entry["limit"], entry["passed"], entry.get("note", ""),
                     entry.get("per_element_abs"))


def read_result(path):
    """The StepResult of a <step>_diff.json (write_reports), an older run's included: its keys read back as
    KeyResults, not by string key wherever they are needed."""
    with open(path, encoding="utf-8") as handle:
        written = json.load(handle)
    return StepResult(written["step"], written["dtype"],
                      [key_from_json(name, entry) for name, entry in written["keys"].items()])


def diff_log_lines(result):
    """reprod_log's report format, so a reviewer's usual tooling reads it; the verdict is ours."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    prefix = f"[{stamp}] root INFO: "
    lines = []
    for key in result.keys:
        lines.append(f"{prefix}{key.name}: ")
        for method, value in (("mean", key.mean_abs), ("max", key.max_abs)):
            lines.append(f"{prefix}\t{method} diff: check passed: {key.passed}, value: {value}")
    lines.append(f"{prefix}diff check {'passed' if result.passed else 'failed'}")
    return lines


def write_reports(result, env, log_path, json_path):
    write_text(log_path, "\n".join(diff_log_lines(result)) + "\n")
    with atomic_path(json_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(result_as_json(result, env), handle, indent=2)
            handle.write("\n")

