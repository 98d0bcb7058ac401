"""The whole suite as a user runs it: two processes, reprod_log files, verdicts, exit status."""
import json

import numpy as np
import pytest

from alignment.steps import STEPS, runs_in

from .conftest import run_module, side_process_imports_paddle


@pytest.fixture(scope="module")
def suite_run(module_tmp):
    workdir = module_tmp("suite")
    done = run_module("alignment", "--size", 64, "--bit", 12, "--workdir", workdir)
    return workdir, done


def test_suite_passes_and_writes_every_file(suite_run):
    workdir, done = suite_run
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [(step, dtype) for dtype in ("float32", "float64") for step in STEPS if runs_in(step, dtype)]
    assert f"alignment passed: {len(checks)}/{len(checks)} checks" in done.stdout
    for step, dtype in checks:
        for suffix in ("_torch.npy", "_paddle.npy", "_diff.log", "_diff.json"):
            assert (workdir / dtype / f"{step}{suffix}").is_file()
    for dtype in ("float32", "float64"):
        report = json.loads((workdir / dtype / "backward_diff.json").read_text())
        assert report["passed"] and report["env"]["torch"]["framework"] == "torch"
        assert report["env"]["paddle"]["threads"] == 1
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["passed"] and len(summary["steps"]) == len(checks)


def test_float64_agreement_is_near_exact(suite_run):
    workdir, _ = suite_run
    for step in ("forward", "loss", "backward", "optim", "train", "metric"):
        report = json.loads((workdir / "float64" / f"{step}_diff.json").read_text())
        assert max(key["max_rel"] for key in report["keys"].values()) < 1e-12, step


def test_reprod_log_reads_what_the_torch_side_wrote(suite_run):
    from reprod_log import ReprodDiffHelper

    workdir, _ = suite_run
    helper = ReprodDiffHelper()
    torch_values = helper.load_info(str(workdir / "float64" / "forward_torch.npy"))
    paddle_values = helper.load_info(str(workdir / "float64" / "forward_paddle.npy"))
    assert set(torch_values) == {"logits", "h", "b", "train_logits", "train_h", "train_b"}
    helper.compare_info(torch_values, paddle_values)
    np.testing.assert_allclose(torch_values["h"], paddle_values["h"], rtol=1e-12)


def test_torch_side_process_never_imports_paddle(suite_run):
    workdir, _ = suite_run
    assert not side_process_imports_paddle("alignment.side", "--bit", 12, "--workdir", workdir, "--steps", "loss",
                                           "--dtypes", "float64")


def test_weights_for_another_bit_length_stop_the_suite_with_a_clear_message(suite_run, tmp_path):
    workdir, _ = suite_run
    done = run_module("alignment", "--size", 64, "--bit", 48, "--workdir", tmp_path,
                      "--weights", workdir / "inputs" / "weights_bit12.pth")
    assert done.returncode == 2 and "12-bit codes, the run asks for 48" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_step_is_refused(tmp_path):
    done = run_module("alignment", "--steps", "forward,telepathy", "--workdir", tmp_path)
    assert done.returncode == 2 and "unknown steps telepathy" in done.stderr
