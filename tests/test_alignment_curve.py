"""align-curve: both frameworks train normally; the verdict on the final mAP and the figures beside it."""
import json
import re

import numpy as np
import pytest

from alignment.pairs.greedyhash.curve import loss_difference_per_epoch, parse_seeds, summarize
from alignment.pairs.greedyhash.curve_worker import evaluated_after
from alignment.pairs.greedyhash.tolerances import curve_map_tolerance
from greedyhash_common.infra.errors import UserInputError

from .conftest import run_module

ITERATIONS_PER_EPOCH = 16  # the built-in data's 500 training images in batches of 32, the last of 20


def fake_run(final_map, loss_offset=0.0, epochs=2):
    losses = np.linspace(2.4, 1.0, epochs * 3) + loss_offset
    return {"loss_total": losses, "map": np.array([0.2, final_map]), "map_epoch": np.array([1.0, epochs])}


def fake_runs(torch_maps, paddle_maps):
    runs = {}
    for seed, (torch_map, paddle_map) in enumerate(zip(torch_maps, paddle_maps)):
        runs[seed, "torch"], runs[seed, "paddle"] = fake_run(torch_map), fake_run(paddle_map, loss_offset=0.5)
    return runs


def test_the_verdict_compares_the_mean_final_map_with_the_tolerance():
    tolerance = curve_map_tolerance(2)
    close = summarize(fake_runs([0.50, 0.54], [0.52, 0.53]), [0, 1], 2, [1.0, 1.0])
    assert close["passed"] and close["mean_final_map_difference"] == pytest.approx(0.005)
    assert close["self_spread_over_seeds"] == pytest.approx({"torch": 0.04, "paddle": 0.01})
    assert close["per_seed_difference"] == pytest.approx([0.02, 0.01])
    far = summarize(fake_runs([0.50, 0.54], [0.50 - 4 * tolerance, 0.54]), [0, 1], 2, [1.0, 1.0])
    assert not far["passed"] and far["mean_final_map_difference"] == pytest.approx(2 * tolerance)
    assert far["map_epochs"] == [1, 2]


def test_the_tolerance_narrows_with_more_seeds():
    assert curve_map_tolerance(3) == pytest.approx(0.12, abs=0.005)
    assert curve_map_tolerance(12) == pytest.approx(curve_map_tolerance(3) / 2)


def test_the_loss_difference_is_reported_per_epoch():
    runs = fake_runs([0.5], [0.5])
    runs[0, "paddle"]["loss_total"][-1] += 1.0
    np.testing.assert_allclose(loss_difference_per_epoch(runs, 0, 2), [0.5, 0.5 + 1.0 / 3])


def test_evaluation_epochs_include_the_last():
    assert [epoch for epoch in range(1, 8) if evaluated_after(epoch, 3, 7)] == [3, 6, 7]
    assert [epoch for epoch in range(1, 4) if evaluated_after(epoch, 1, 3)] == [1, 2, 3]


@pytest.mark.parametrize("text", ["1,x", "3,3", ""])
def test_bad_seeds_are_refused(text):
    with pytest.raises(UserInputError):
        parse_seeds(text)


@pytest.mark.slow
def test_the_command_trains_both_frameworks_and_writes_curves_and_plot(tmp_path):
    done = run_module("alignment.pairs.greedyhash.curve", "--epochs", 1, "--seeds", 3, "--workdir", tmp_path,
                      timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    for side in ("torch", "paddle"):  # each epoch's end is shown while training runs
        assert re.search(rf"^\[ *\d+ s\] {side} seed 3 epoch 1/1: [\d.]+ s$", done.stdout, re.M), done.stdout
    summary = json.loads((tmp_path / "curve.json").read_text())
    assert summary["seeds"] == [3] and summary["map_epochs"] == [1] and summary["tolerance"] == curve_map_tolerance(1)
    for side in ("torch", "paddle"):
        assert len(summary["loss_per_epoch"][f"{side}/seed3"]) == 1
        assert 0.0 < summary["final_map"][side][0] <= 1.0
    first_epoch_difference = summary["loss_difference_per_epoch"]["seed3"][0]
    assert 0.0 < first_epoch_difference < 1.0, "own dropout on each side: close, never identical"
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 3 |" in (tmp_path / "curve.md").read_text()
    from alignment.reprod_format import load_values

    assert len(load_values(str(tmp_path / "seed3_torch.npy"))["loss_total"]) == ITERATIONS_PER_EPOCH


def test_a_bad_option_is_a_clear_error(tmp_path):
    done = run_module("alignment.pairs.greedyhash.curve", "--eval-every", 0, "--workdir", tmp_path)
    assert done.returncode == 2 and "--eval-every" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "curve.json").exists()
