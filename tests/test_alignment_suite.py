"""The whole suite as a user runs it: two processes, reprod_log files, verdicts, exit status."""
import json

import numpy as np
import pytest

from alignment.cases import RunCases
from alignment.steps import STEPS, runs_in, step_cases

from .conftest import left_by_make_clean, run_module, side_process_imports_paddle

RUN_CASES = RunCases(sizes=(64,))


@pytest.fixture(scope="module")
def suite_run(module_tmp):
    workdir = module_tmp("suite")
    done = run_module("alignment", "--sizes", 64, "--bit", 12, "--workdir", workdir)
    return workdir, done


@pytest.mark.slow
def test_suite_passes_every_case_and_writes_every_file(suite_run):
    workdir, done = suite_run
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [(step, case, dtype) for dtype in ("float32", "float64") for step in STEPS if runs_in(step, dtype)
              for case in step_cases(step, RUN_CASES, dtype)]
    assert {case.label for _, case, _ in checks} == {"64px", "seeded", "seeded-64px", "rescaled-64px"}
    assert f"alignment passed: {len(checks)}/{len(checks)} checks" in done.stdout
    for step, case, dtype in checks:
        for suffix in ("_torch.npy", "_paddle.npy", "_diff.log", "_diff.json"):
            assert (workdir / dtype / case.label / f"{step}{suffix}").is_file()
    for dtype in ("float32", "float64"):
        report = json.loads((workdir / dtype / "rescaled-64px" / "backward_diff.json").read_text())
        assert report["passed"] and report["env"]["torch"]["framework"] == "torch"
        assert report["env"]["paddle"]["threads"] == 1
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["passed"] and len(summary["steps"]) == len(checks)


@pytest.mark.slow
def test_make_clean_removes_everything_the_suite_wrote(suite_run):
    workdir, _ = suite_run
    assert len(list(workdir.iterdir())) > 5 and left_by_make_clean(str(workdir)) == []


@pytest.mark.slow
def test_a_layer_the_run_did_not_exercise_is_reported_not_covered(suite_run):
    """At 64 px the adaptive pool copies a 1x1 map and every max-pool tiles its input exactly (15 -> 7 -> 3 ->
    1): any pooling would agree at the first, a ceil_mode max-pool at the others."""
    workdir, done = suite_run
    uncovered = ["alex.features.2", "alex.features.5", "alex.features.12", "alex.avgpool"]
    assert f", 4 layers not covered ({', '.join(uncovered)})" in done.stdout.splitlines()[-1]
    assert "not covered: alex.avgpool (AdaptiveAvgPool2d): windows of more than one element" in done.stdout
    assert "not covered: alex.features.12 (MaxPool2d): a window cut by the border" in done.stdout
    report = json.loads((workdir / "report.json").read_text())
    assert report["not_covered"] == uncovered
    rows = {row["layer"]: row for row in report["coverage"]}
    assert rows["alex.classifier.5"]["criteria"]["inputs beyond 6"] == ["rescaled-64px"]  # not the seeded weights
    assert rows["sign(h)"]["criteria"]["|h| on both sides of 1"] == ["rescaled-64px"]
    assert "**not covered**: windows of more than one element" in (workdir / "report.md").read_text()


@pytest.mark.slow
def test_float64_agreement_is_near_exact(suite_run):
    workdir, _ = suite_run
    for step, case in (("forward", "seeded-64px"), ("forward", "rescaled-64px"), ("loss", "rescaled-64px"),
                       ("backward", "rescaled-64px"), ("optim", "seeded"), ("train", "seeded-64px"),
                       ("train", "rescaled-64px"), ("metric", "rescaled-64px")):
        report = json.loads((workdir / "float64" / case / f"{step}_diff.json").read_text())
        assert max(key["max_rel"] for key in report["keys"].values()) < 1e-12, (step, case)


@pytest.mark.slow
def test_reprod_log_reads_what_the_torch_side_wrote(suite_run):
    from reprod_log import ReprodDiffHelper

    workdir, _ = suite_run
    helper = ReprodDiffHelper()
    torch_values = helper.load_info(str(workdir / "float64" / "seeded-64px" / "forward_torch.npy"))
    paddle_values = helper.load_info(str(workdir / "float64" / "seeded-64px" / "forward_paddle.npy"))
    assert set(torch_values) == {"logits", "h", "b", "train_logits", "train_h", "train_b"}
    helper.compare_info(torch_values, paddle_values)
    np.testing.assert_allclose(torch_values["h"], paddle_values["h"], rtol=1e-12)


@pytest.mark.slow
def test_torch_side_process_never_imports_paddle(suite_run):
    workdir, _ = suite_run
    assert not side_process_imports_paddle("alignment.side", "--bit", 12, "--workdir", workdir, "--steps", "loss",
                                           "--dtypes", "float64", "--sizes", 64)


@pytest.mark.slow
def test_weights_for_another_bit_length_stop_the_suite_with_a_clear_message(suite_run, tmp_path):
    workdir, _ = suite_run
    done = run_module("alignment", "--sizes", 64, "--bit", 48, "--workdir", tmp_path,
                      "--weights", workdir / "inputs" / "weights_bit12_seeded.pth")
    assert done.returncode == 2 and "12-bit codes, the run asks for 48" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_step_is_refused(tmp_path):
    done = run_module("alignment", "--steps", "forward,telepathy", "--workdir", tmp_path)
    assert done.returncode == 2 and "unknown steps telepathy" in done.stderr
