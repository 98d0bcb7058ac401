"""The whole suite as a user runs it: two processes, reprod_log files, verdicts, exit status."""
import argparse
import json
import types

import numpy as np
import pytest

from alignment.cases import Case, RunCases
from alignment.check import StepResult, failed_key
from alignment.pairs.greedyhash import GREEDYHASH, paddle_side, torch_side
from alignment.sides import reusing_builds
from alignment.steps import runs_in, step_cases, steps_of
from alignment.layers.localize import CHAINED, ISOLATED
from alignment.suite import (LAYER_RECORDS, REPROD_LOG_STEPS, cases_to_localize, keeps_conversions,
                             removable_layer_arrays)

from .conftest import NULL_FD, left_by_make_clean, run_module, side_process_imports_paddle

RUN_CASES = RunCases(GREEDYHASH.WEIGHT_SETS, (64,))


@pytest.fixture(scope="module")
def suite_run(module_tmp):
    workdir = module_tmp("suite")
    done = run_module("alignment", "--sizes", 64, "--bit", 12, "--workdir", workdir)
    return workdir, done


@pytest.mark.slow
def test_suite_passes_every_case_and_keeps_only_what_a_user_reads(suite_run):
    workdir, done = suite_run
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [(step, case, dtype) for dtype in ("float32", "float64") for step in steps_of(GREEDYHASH)
              if runs_in(step, dtype, GREEDYHASH) for case in step_cases(step, RUN_CASES, dtype, GREEDYHASH)]
    assert {case.label for _, case, _ in checks} == {"64px", "seeded", "seeded-64px", "rescaled-64px"}
    assert f"alignment passed: {len(checks)}/{len(checks)} checks" in done.stdout
    for step, case, dtype in checks:
        for suffix in ("_torch.npy", "_paddle.npy", "_diff.log", "_diff.json"):
            kept = suffix.startswith("_diff") or step in REPROD_LOG_STEPS  # every step passed: no failing key
            assert (workdir / dtype / case.label / f"{step}{suffix}").is_file() == kept, (step, case, dtype, suffix)
    assert not list(workdir.glob("*/*/layers*.npz"))  # localized, then dropped: the verdicts are in the JSON
    # each weight set's .pth stays for the next run, which converts it again: the .pdparams goes
    assert sorted(path.name for path in workdir.glob("inputs/weights_*")) == [
        f"weights_bit12_{name}{suffix}" for name in ("rescaled", "seeded") for suffix in (".pth", ".stamp.json")]
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
    assert f", 4 layers ({', '.join(uncovered)}) not covered" in done.stdout.splitlines()[-1]
    assert "not covered: 1 layer (alex.avgpool) (AdaptiveAvgPool2d): windows of more than one element" in done.stdout
    assert "not covered: 3 layers (alex.features.2, alex.features.5, alex.features.12) (MaxPool2d): a window cut by" \
           " the border" in done.stdout
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
    assert not side_process_imports_paddle("alignment.worker", "--model", "greedyhash", "--bit", 12, "--workdir", workdir,
                                           "--steps", "loss", "--values-fd", NULL_FD,
                                           "--dtypes", "float64", "--sizes", 64)


@pytest.mark.slow
def test_weights_for_another_bit_length_stop_the_suite_with_a_clear_message(suite_run, tmp_path):
    workdir, _ = suite_run
    done = run_module("alignment", "--sizes", 64, "--bit", 48, "--workdir", tmp_path,
                      "--weights", workdir / "inputs" / "weights_bit12_seeded.pth")
    assert done.returncode == 2 and "12-bit codes, the run asks for 48" in done.stderr
    assert "Traceback" not in done.stderr


def test_only_a_run_of_every_step_removes_the_weight_sets_conversions():
    """make align leaves each set's .pth alone (the .pdparams is converted again); the edit loop's runs of
    some steps keep both files, and --keep-arrays keeps them in any run."""
    every_step = list(GREEDYHASH.STEPS)
    assert not keeps_conversions(argparse.Namespace(keep_arrays=False), GREEDYHASH, every_step)
    assert keeps_conversions(argparse.Namespace(keep_arrays=True), GREEDYHASH, every_step)
    assert keeps_conversions(argparse.Namespace(keep_arrays=False), GREEDYHASH, ["forward"])
    assert keeps_conversions(argparse.Namespace(keep_arrays=False), GREEDYHASH, every_step[:-1])


def test_unknown_step_is_refused(tmp_path):
    done = run_module("alignment", "--steps", "forward,telepathy", "--workdir", tmp_path)
    assert done.returncode == 2 and "unknown steps telepathy" in done.stderr


def _some_parameters(side, model):
    """The first and the last parameter, by torch name: a build reused wrongly would show in both."""
    named = list(side.named_parameters(model))
    return {name: side.numpy(parameter).copy() for name, parameter in (named[0], named[-1])}


@pytest.mark.slow
@pytest.mark.parametrize("side", [torch_side, paddle_side], ids=["torch", "paddle"])
def test_a_side_reusing_its_builds_gives_every_step_the_model_a_fresh_build_gives(side, weight_sets):
    """alignment.sides.reusing_builds: each build is the build's model, whatever a step did to an earlier
    one, across weight sets and precisions; the side's own build_model is back afterwards."""
    build = side.build_model
    builds = [("seeded", "float32"), ("rescaled", "float32"), ("seeded", "float32"), ("seeded", "float64"),
              ("seeded", "float32")]
    path = {weight_set: paths[side is paddle_side] for weight_set, paths in weight_sets.items()}
    expected = {key: _some_parameters(side, build(48, key[1], path[key[0]])) for key in set(builds)}
    with reusing_builds(side):
        for weight_set, dtype in builds + builds[:1]:
            model = side.build_model(48, dtype, path[weight_set])
            got = _some_parameters(side, model)
            for name, value in expected[weight_set, dtype].items():
                np.testing.assert_array_equal(got[name], value, err_msg=f"{weight_set} {dtype} {name}")
            for _, parameter in side.named_parameters(model):  # what a step may do to its model
                (parameter.set_value(parameter * 0) if side is paddle_side else parameter.data.zero_())
                break
    assert side.build_model is build


def test_a_side_builds_each_weight_set_once_per_precision_as_the_steps_take_turns():
    """The steps of a run alternate between the weight sets (forward seeded, forward rescaled, loss seeded...):
    each set is built once per precision, and again only after another precision."""
    made = []
    side = types.SimpleNamespace(build_model=lambda bit, dtype, weights: made.append((weights, dtype)) or [weights])
    turns = [("seeded", "float32"), ("rescaled", "float32")] * 3 + [("seeded", "float64"), ("seeded", "float32")]
    with reusing_builds(side):
        models = [side.build_model(48, dtype, weights) for weights, dtype in turns]
    assert made == [("seeded", "float32"), ("rescaled", "float32"), ("seeded", "float64"), ("seeded", "float32")]
    assert models == [[weights] for weights, _ in turns]
    assert len({id(model) for model in models}) == len(models)  # each a copy of its own


def test_without_the_profile_only_failures_are_localized():
    """--no-profile (the one-step targets): a passing run starts no layer process; a failing forward or
    backward check is still localized in its case and precision."""
    seeded, rescaled = Case("seeded", 224), Case("rescaled", 224)
    passing = [StepResult("forward", dtype, [], case) for dtype in ("float32", "float64")
               for case in (seeded, rescaled)]
    failing = StepResult("backward", "float64", [failed_key("grad.fc.weight", (), "planted")], rescaled)
    assert cases_to_localize(passing) == {seeded: ["float32", "float64"]}
    assert cases_to_localize(passing, profile=False) == {}
    assert cases_to_localize([*passing, failing], profile=False) == {rescaled: ["float64"]}


def test_once_compared_a_case_keeps_only_the_layer_records_its_diagnosis_reads():
    """Paddle's chained record is read by the comparison alone; a case with a failing forward or backward
    check, in any precision, keeps torch's record and both records of units run alone (the known differences
    and the rounding rule read them); a case localized for the profile alone keeps nothing."""
    seeded, rescaled = Case("seeded", 224), Case("rescaled", 224)
    results = [StepResult(step, dtype, [], case) for step in ("forward", "backward", "train")
               for dtype in ("float32", "float64") for case in (seeded, rescaled)]
    failing = StepResult("backward", "float32", [failed_key("grad.fc.weight", (), "planted")], rescaled)
    failing_elsewhere = StepResult("train", "float64", [failed_key("loss_total", (), "planted")], seeded)
    results += [failing, failing_elsewhere]
    assert set(removable_layer_arrays(results, rescaled)) == {(CHAINED, "paddle")}
    assert set(removable_layer_arrays(results, seeded)) == set(LAYER_RECORDS) == {
        (kind, side) for kind in (CHAINED, ISOLATED) for side in ("torch", "paddle")}


def test_the_pair_decides_which_weight_sets_are_checked_at_the_first_size_only():
    """GreedyHash's seeded set beside the rescaled one at the first size only (its FIRST_SIZE_ONLY); a pair that
    declares none checks every set at every size."""
    from alignment.cases import SIZE, WEIGHTS, run_cases_of
    from alignment.pairs.greedyhash import GreedyHashPair

    class EverySize(GreedyHashPair):
        FIRST_SIZE_ONLY = ()

    args = argparse.Namespace(weight_sets="seeded,rescaled", sizes="224,222", bulk_size=64)
    labels = [[case.label for case in run_cases_of(args, pair).of({WEIGHTS, SIZE})]
              for pair in (GREEDYHASH, EverySize())]
    assert labels == [["seeded-224px", "rescaled-224px", "rescaled-222px"],
                      ["seeded-224px", "seeded-222px", "rescaled-224px", "rescaled-222px"]]
