"""The checker decides correctly where reprod_log does not (reprod_log's defects: docs/alignment.md,
"Reading the results")."""
import glob
import json
import os
import re

import numpy as np
import pytest

from alignment.check import (check_step, compare_arrays, compare_codes, diff_log_lines, largest_magnitude, read_result,
                             result_as_json, write_reports)
from alignment.pairs.greedyhash import GREEDYHASH
from alignment.steps import runs_in, steps_of, tolerance_overrides
from alignment.steps import code_keys as step_code_keys
from alignment.tolerances import NEAR_EXACT, Tolerance, tolerance
from alignment.verdict import StepVerdict, verdict_table

from .conftest import PROJECT_ROOT


def failing_keys(result):
    return {key.name: key.note for key in result.keys if not key.passed}


def test_identical_values_pass():
    values = {"logits": np.arange(6.0).reshape(2, 3), "h": np.array([0.5, -0.5])}
    assert check_step("forward", "float64", values, dict(values)).passed


def test_nan_fails_and_is_named(tmp_path):
    torch_values = {"logits": np.ones(4), "h": np.ones(4)}
    paddle_values = {"logits": np.ones(4), "h": np.array([1.0, np.nan, 1.0, 1.0])}
    assert failing_keys(check_step("forward", "float64", torch_values, paddle_values)) == {
        "h": "NaN or Inf in paddle"}


def test_reprod_log_itself_passes_a_nan_which_is_why_it_does_not_decide():
    from reprod_log.compare import compute_diff
    from reprod_log.utils import check_print_diff

    diff = compute_diff({"h": np.ones(4)}, {"h": np.array([1.0, np.nan, 1.0, 1.0])})
    assert check_print_diff(diff, print_func=lambda *_: None) is True


@pytest.mark.parametrize("torch_shape,paddle_shape", [((3, 4), (4, 3)), ((4, 1), (4,)), ((4096, 4096), (4096, 4095))])
def test_any_shape_mismatch_fails(torch_shape, paddle_shape):
    result = compare_arrays("w", np.zeros(torch_shape), np.zeros(paddle_shape), NEAR_EXACT)
    assert not result.passed and "shape differs" in result.note


def test_dtype_mismatch_fails():
    result = compare_arrays("w", np.zeros(3, np.float32), np.zeros(3, np.float64), NEAR_EXACT)
    assert not result.passed and "dtype differs" in result.note


def test_missing_and_extra_keys_fail_by_name():
    result = check_step("loss", "float64", {"a": np.zeros(1), "b": np.zeros(1)}, {"a": np.zeros(1), "c": np.zeros(1)})
    assert failing_keys(result) == {"b": "missing in paddle", "c": "missing in torch"}


def test_tolerance_is_relative_to_the_tensor_scale():
    reference = np.array([1000.0, 1e-6])
    assert compare_arrays("g", reference, reference + [1e-8, 1e-8], Tolerance(0.0, 1e-10)).passed
    assert not compare_arrays("g", reference, reference + [1e-6, 0.0], Tolerance(0.0, 1e-10)).passed
    result = compare_arrays("g", reference, reference + [0.0, 1e-5], Tolerance(0.0, 1e-10))
    assert result.max_abs == pytest.approx(1e-5) and result.max_rel == pytest.approx(1e-8)


def test_sign_flip_is_excused_only_where_h_is_within_tolerance_of_zero():
    h = np.array([[0.5, -1e-17, 0.3]])
    codes = np.sign(h)
    flipped_near_zero = codes.copy()
    flipped_near_zero[0, 1] = 1.0
    result = compare_codes("b", codes, flipped_near_zero, h, NEAR_EXACT)
    assert result.passed and result.note.startswith("1 sign flips where |h| is within tolerance")
    flipped_far = codes.copy()
    flipped_far[0, 0] = -1.0
    result = compare_codes("b", codes, flipped_far, h, NEAR_EXACT)
    assert not result.passed and "1 flips where |h| is not" in result.note


def test_invariants_are_checked_inside_each_side():
    good = {"grad_cross_entropy.h": np.ones(3), "grad_cross_entropy.b": np.ones(3)}
    bad = {"grad_cross_entropy.h": np.ones(3), "grad_cross_entropy.b": np.array([1.0, 2.0, 1.0])}
    invariant = (("grad_cross_entropy.h", "grad_cross_entropy.b"),)
    result = check_step("backward", "float64", good, bad, invariants=invariant)
    assert set(failing_keys(result)) == {"grad_cross_entropy.b",
                                         "grad_cross_entropy.h == grad_cross_entropy.b (paddle)"}


def test_reports_follow_reprod_log_format_and_the_json_schema(tmp_path):
    result = check_step("forward", "float32", {"h": np.ones(3), "logits": np.ones(2)},
                        {"h": np.ones(3), "logits": np.array([1.0, 2.0])})
    lines = diff_log_lines(result)
    stamp = r"\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] root INFO: "
    assert re.fullmatch(stamp + r"h: ", lines[0])
    assert re.fullmatch(stamp + r"\tmean diff: check passed: True, value: 0\.0", lines[1])
    assert re.fullmatch(stamp + r"\tmax diff: check passed: False, value: 1\.0", lines[5])
    assert lines[-1].endswith("root INFO: diff check failed")
    env = {"torch": {"version": "x"}, "paddle": {"version": "y"}}
    write_reports(result, env, tmp_path / "forward_diff.log", tmp_path / "forward_diff.json")
    report = json.loads((tmp_path / "forward_diff.json").read_text())
    assert report["step"] == "forward" and report["dtype"] == "float32" and report["passed"] is False
    assert report["env"] == env
    assert set(report["keys"]["logits"]) >= {"shape", "max_abs", "mean_abs", "max_rel", "atol", "rtol", "passed"}
    assert report["keys"]["logits"]["passed"] is False and report["keys"]["h"]["passed"] is True


def test_every_step_and_key_of_the_reference_run_is_held_to_the_tolerance_table():
    """Every check of the committed reference run (make align-reference), key by key: the table has a
    tolerance for it, float32 ones allow rounding, and the run held it to that tolerance or to equality."""
    reports = [path for path in glob.glob(os.path.join(PROJECT_ROOT, "logs", "reference", "float*", "*", "*_diff.json"))
               if not os.path.basename(path).startswith("layers")]
    checked = set()
    for path in reports:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        code_keys = step_code_keys(report["step"], GREEDYHASH) or {}
        for key, entry in report["keys"].items():
            if re.fullmatch(r".+ == .+ \((torch|paddle)\)", key):  # an invariant inside one side: exact
                assert (entry["atol"], entry["rtol"]) == (0.0, 0.0), (path, key)
                continue
            # sign codes are judged by their h's tolerance; codes, labels and flags are held to equality
            expected = tolerance(report["step"], report["dtype"], code_keys.get(key, key),
                                 tolerance_overrides(report["step"], GREEDYHASH))
            assert (entry["atol"], entry["rtol"]) in {(expected.atol, expected.rtol), (0.0, 0.0)}, (path, key)
            assert report["dtype"] == "float64" or expected.rtol > 0 or expected.atol > 0, (path, key)
            checked.add((report["step"], report["dtype"]))
    assert checked == {(step, dtype) for dtype in ("float32", "float64") for step in steps_of(GREEDYHASH)
                       if runs_in(step, dtype, GREEDYHASH)}
    assert tolerance("backward", "float64", "grad.input") == NEAR_EXACT

def test_the_terminal_table_names_each_check_its_verdict_and_worst_key():
    """An older run's summary.json entry (no findings) read back as a verdict: failed, as a defect."""
    rows = [StepVerdict.from_json({"step": "backward", "case": "rescaled-222px", "dtype": "float64", "passed": False,
                                   "worst_key": "grad.alex.features.0.weight", "max_abs": 1e-3, "max_rel": 0.2,
                                   "limit": 3e-12, "note": "NaN or Inf in paddle"})]
    lines = verdict_table(rows, [("step", 10), ("case", 16), ("dtype", 8)]).splitlines()
    assert lines[0].split() == ["step", "case", "dtype", "verdict", "worst", "key", "max", "abs", "max", "rel", "limit"]
    assert lines[2].split() == ["backward", "rescaled-222px", "float64", "FAIL", "grad.alex.features.0.weight", "0.001",
                                "0.2", "3e-12", "defect"]
    assert rows[0].findings[0].reason == "NaN or Inf in paddle"


def test_a_diff_json_reads_back_as_the_result_it_was_written_from(tmp_path):
    """The checker's per-key JSON is read back as KeyResults (alignment.check.read_result), for the figures and
    the benchmarks: a NaN, a series, a note and a failing key survive; so does every file of the committed
    reference run (written by an older run)."""
    import glob
    import json

    from tests.conftest import PROJECT_ROOT

    result = check_step("train", "float64", {"loss_total": np.ones(3), "h": np.ones(2), "grad.b": np.zeros(2)},
                        {"loss_total": np.array([1.0, 1.0, 2.0]), "h": np.array([1.0, np.nan]), "grad.b": np.zeros(2)})
    write_reports(result, {"torch": {}}, str(tmp_path / "train_diff.log"), str(tmp_path / "train_diff.json"))
    read = read_result(str(tmp_path / "train_diff.json"))
    assert result_as_json(read, {"torch": {}}) == result_as_json(result, {"torch": {}})
    assert [key.passed for key in read.keys] == [False, False, True] and read.keys[1].note == "NaN or Inf in paddle"
    committed = glob.glob(f"{PROJECT_ROOT}/logs/reference/float*/*/*_diff.json")
    assert committed
    for path in committed:
        with open(path, encoding="utf-8") as handle:
            written = json.load(handle)
        assert json.loads(json.dumps(result_as_json(read_result(path), written["env"]))) == written, path


@pytest.mark.parametrize("array", [np.array([-3.0, 2.0]), np.array([-0.0, 0.0]), np.array([1.0, np.nan, -5.0]),
                                   np.array([-np.inf, 1.0]), np.arange(-4, 3), np.arange(7, dtype=np.uint8),
                                   np.zeros((0, 3)), np.float32([[1e-30, -3e38]]), np.array(2.5)])
def test_the_scale_is_the_largest_magnitude_as_np_abs_gives_it(array):
    expected = float(np.max(np.abs(array))) if array.size else 0.0
    np.testing.assert_equal(largest_magnitude(array), expected)


def test_a_port_in_fortran_order_gives_the_verdict_and_figures_of_the_same_values_in_c_order():
    reference = np.random.default_rng(0).standard_normal((40, 30))
    port = reference + np.random.default_rng(1).standard_normal((40, 30)) * 1e-9
    tol = Tolerance(1e-10, 1e-12)
    assert repr(compare_arrays("w", reference, np.asfortranarray(port), tol)) == repr(
        compare_arrays("w", reference, port, tol))
    nan_port = np.asfortranarray(port)
    nan_port[3, 4] = np.nan
    assert compare_arrays("w", reference, nan_port, tol).note == "NaN or Inf in paddle"
    overflowing = compare_arrays("w", np.array([1e308]), np.array([-1e308]), tol)  # finite sides, an infinite gap
    assert not overflowing.passed and overflowing.max_abs == np.inf and overflowing.note == ""
