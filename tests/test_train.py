"""Training on both sides (CPU, tiny data): exact resume after a kill, the stop on a non-finite loss, bad input."""
import importlib
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import PROJECT_ROOT, run_module
from tests.tiny_runs import (BEST, FRAMEWORKS, LAST, as_arrays, assert_identical, file_signature,
                             read_training_checkpoint, tiny_options, trained_on_first_use)

TIMING_KEYS = ("seconds", "images_per_second", "eval_seconds")


@pytest.fixture(scope="module")
def uninterrupted(module_tmp, split_file):
    """framework -> the folder of a 2-epoch run that nothing interrupted (trained on first use)."""
    return trained_on_first_use(lambda framework: module_tmp(f"{framework}-uninterrupted"), split_file, epochs=2)


def train_until_first_checkpoint_then_kill(framework, split_file, output_dir):
    """Start a 2-epoch run and SIGKILL it as soon as the checkpoint of epoch 1 exists."""
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT)
    command = [sys.executable, "-m", f"{framework}_impl.train", *map(str, tiny_options(split_file, output_dir))]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = output_dir / LAST[framework]
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert checkpoint.exists(), process.stderr.read().decode()
    return checkpoint


def without_timings(history):
    return [{key: value for key, value in record.items() if key not in TIMING_KEYS} for record in history]


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_killed_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(framework, split_file,
                                                                                 uninterrupted, tmp_path):
    killed = train_until_first_checkpoint_then_kill(framework, split_file, tmp_path)
    assert read_training_checkpoint(framework, killed)["epoch"] == 0, "the run was not stopped during epoch 2"

    completed = run_module(f"{framework}_impl.train", "--resume", tmp_path, "--threads", 2)
    assert completed.returncode == 0, completed.stderr
    assert "resumed from" in completed.stdout

    expected = read_training_checkpoint(framework, uninterrupted(framework) / LAST[framework])
    resumed = read_training_checkpoint(framework, killed)
    assert resumed["epoch"] == expected["epoch"] == 1
    for part in ("model", "optimizer", "scheduler"):
        assert_identical(as_arrays(resumed[part]), as_arrays(expected[part]), part)
    assert without_timings(resumed["history"]) == without_timings(expected["history"])
    assert resumed["best_map"] == expected["best_map"]


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_absurd_learning_rate_stops_the_run_with_a_clear_message(framework, split_file, tmp_path):
    # --deterministic here too: the flag must be harmless on a CPU build (it only concerns GPU kernels).
    completed = run_module(f"{framework}_impl.train", *tiny_options(split_file, tmp_path), "--lr", "1e10",
                           "--deterministic")
    assert completed.returncode == 2
    assert "training diverged and was stopped" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert os.listdir(tmp_path) == []  # diverged before its first checkpoint: no config.yaml, no split.npz


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_non_finite_loss_keeps_the_last_good_checkpoint(framework, uninterrupted, monkeypatch, capsys):
    train = importlib.import_module(f"{framework}_impl.train")
    step = importlib.import_module(f"{framework}_impl.train_step")  # every update of the loop goes through it
    real_loss = step.greedyhash_loss

    def nan_loss(logits, h, labels, alpha):
        total, cross_entropy, quantization = real_loss(logits, h, labels, alpha)
        return total * float("nan"), cross_entropy, quantization

    monkeypatch.setattr(step, "greedyhash_loss", nan_loss)
    run_dir = uninterrupted(framework)
    before = {name: file_signature(run_dir / name) for name in (LAST[framework], BEST[framework])}
    with pytest.raises(SystemExit) as stopped:
        train.main(["--resume", str(run_dir), "--epochs", "3", "--threads", "2"])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "the loss is not finite at epoch 3, step 1" in message
    assert f"The last good checkpoint is kept: {run_dir / LAST[framework]} (after epoch 2)" in message
    assert {name: file_signature(run_dir / name) for name in before} == before


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("options, message", [
    (["--data", "/nonexistent/cifar"], "/nonexistent/cifar: no such file or folder"),
    (["--device", "gpu"], "sees no GPU"),
    (["--pretrained", "/nonexistent/alexnet"], "/nonexistent/alexnet: no such file. The ImageNet AlexNet weights"),
    (["--resume", "/nonexistent/last"], "--resume: /nonexistent/last: no such checkpoint"),
])
def test_bad_training_input_gives_a_clear_message(framework, options, message, split_file, tmp_path, capsys):
    train = importlib.import_module(f"{framework}_impl.train")
    with pytest.raises(SystemExit) as stopped:
        train.main([*map(str, tiny_options(split_file, tmp_path)), *options])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / LAST[framework]).exists()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_corrupt_checkpoint_is_refused_on_resume(framework, tmp_path, capsys):
    train = importlib.import_module(f"{framework}_impl.train")
    corrupt = tmp_path / LAST[framework]
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SystemExit) as stopped:
        train.main(["--resume", str(corrupt)])
    assert stopped.value.code == 2
    assert f"{corrupt}: not a readable" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_resume_refuses_a_changed_trajectory_and_a_new_run_refuses_an_existing_one(framework, uninterrupted, capsys):
    train = importlib.import_module(f"{framework}_impl.train")
    run_dir = str(uninterrupted(framework))
    with pytest.raises(SystemExit):
        train.main(["--resume", run_dir, "--lr", "0.5"])
    assert "these options differ from the checkpoint's: --lr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--output-dir", run_dir, "--bit", "12"])
    assert "already holds a run" in capsys.readouterr().err


def test_the_command_line_exits_without_a_traceback():
    completed = run_module("paddle_impl.train", "--device", "gpu", "--output-dir", "/nonexistent/never-written")
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("error: --device gpu")
    assert "Traceback" not in completed.stderr
