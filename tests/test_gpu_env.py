"""The GPU environment's plumbing: requirements-gpu.txt, the Makefile targets CI runs (checked as make
prints them), and tools.gpu_check on its CPU path (both sides in this environment here; CI runs the
Paddle side in .venv-gpu through `make test-gpu-env`)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from .conftest import PROJECT_ROOT, make_dry_run


def test_requirements_gpu_pins_paddle_gpu_2_6_with_numpy_1_and_no_torch():
    with open(os.path.join(PROJECT_ROOT, "requirements-gpu.txt"), encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    pins = dict(line.split("==") for line in lines)
    assert len(pins) == len(lines), "every requirement is pinned with =="
    assert pins["paddlepaddle-gpu"] == "2.6.2"
    assert pins["numpy"].startswith("1.")
    assert not {"torch", "torchvision", "paddlepaddle"} & set(pins)


def test_make_uses_each_environments_own_requirements():
    assert "-r requirements-gpu.txt" in make_dry_run("-B", "train", "VENV=.venv-gpu")
    assert ".venv-gpu/bin/python -m paddle_impl.train" in make_dry_run("-B", "train", "VENV=.venv-gpu")
    default = make_dry_run("-B", "train")
    assert "-r requirements.txt" in default and "requirements-gpu" not in default


def test_align_gpu_runs_the_torch_side_in_venv_and_the_paddle_side_in_venv_gpu():
    commands = make_dry_run("align-gpu", "VENV=/some/venv", "STEPS=train", "DTYPE=float64")
    assert re.search(r"^/some/venv/bin/python -m alignment .*--dtypes float64 .*--workdir logs/gpu-env/align "
                     r"--paddle-python \.venv-gpu/bin/python --steps train", commands, re.M), commands


def test_make_test_runs_the_gpu_environment_part():
    commands = make_dry_run("test", "VENV=/some/venv")
    assert "-m pytest -q tests" in commands and "test-gpu-env" in commands
    part = make_dry_run("test-gpu-env", "VENV=/some/venv")
    for target in ("gpu-env", "align-gpu", "align-gpu MODEL=resnet18-torch-bn", "lite VENV=.venv-gpu", "gpu-check"):
        assert f"--no-print-directory {target}" in part, target


@pytest.fixture(scope="module")
def gpu_check_run(module_tmp):
    workdir = module_tmp("gpu-check")
    done = subprocess.run([sys.executable, "-m", "tools.gpu_check", "--workdir", str(workdir), "--bit", "12",
                           "--size", "64", "--device", "cpu"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return done, workdir


@pytest.mark.slow
def test_gpu_check_passes_on_its_cpu_path_and_says_so(gpu_check_run):
    done, workdir = gpu_check_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert "torch's device runs ran on the CPU" in done.stdout
    assert "paddle's device runs ran on the CPU" in done.stdout
    assert re.search(r"^\[ *\d+ s\] paddle forward and backward cpu float64: [\d.]+ s$", done.stdout, re.M)
    with open(workdir / "gpu_check.json", encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["passed"] and report["on_gpu"] == []
    runs = [(row["run"], row["against"], row["keys"]) for row in report["runs"]]
    assert runs == [("paddle cpu float64", "torch cpu float64", "all"),
                    ("torch cpu float32", "torch cpu float64", "outputs and losses"),
                    ("paddle cpu float32", "torch cpu float64", "outputs and losses"),
                    ("paddle cpu float32", "torch cpu float32", "all")]
    assert report["runs"][0]["max_rel"] < 1e-12


@pytest.mark.slow
def test_gpu_check_fails_tf32_like_rounding_and_a_changed_gradient(gpu_check_run):
    """What a GPU with TF32 left on would give (outputs about 1e-3 relative off), and a float64 gradient
    that differs (a GPU kernel computing something else), both fail against the reference."""
    from alignment.reprod_format import load_values
    from tools.gpu_check import compare
    from tools.gpu_check_side import run_path

    _, workdir = gpu_check_run
    reference = load_values(run_path(str(workdir), "torch", "cpu", "float64"))
    float32 = load_values(run_path(str(workdir), "paddle", "cpu", "float32"))
    float32["logits"] = float32["logits"] * np.float32(1 + 1e-3)
    failing = {result.name for result in compare(reference, float32, "float32", ("forward", "loss")) if not result.passed}
    assert failing == {"logits"}
    float64 = load_values(run_path(str(workdir), "paddle", "cpu", "float64"))
    float64["grad.alex.classifier.4.weight"] = float64["grad.alex.classifier.4.weight"] * (1 + 1e-8)
    failing = {result.name for result in compare(reference, float64, "float64") if not result.passed}
    assert failing == {"grad.alex.classifier.4.weight"}


@pytest.mark.slow
def test_gpu_check_device_gpu_without_a_gpu_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, "-m", "tools.gpu_check", "--workdir", str(tmp_path), "--bit", "12",
                           "--size", "64", "--device", "gpu"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    # refused up front when the machine has no GPU device at all, else by the side that sees none
    assert "this machine has no NVIDIA GPU" in done.stderr or "sees no GPU" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def gpu_check_layers(gpu_check_run):
    """The float32 layer records of the gpu-check run's batch and weights, as tools.gpu_check asks for them
    when float32 gradients differ."""
    import argparse

    from tools.gpu_check import localize_float32

    _, workdir = gpu_check_run
    args = argparse.Namespace(workdir=str(workdir), torch_python=sys.executable, paddle_python=sys.executable,
                              bit=12, device="cpu", seed=0)
    localize_float32(args)
    return workdir


def judged(workdir, failing_keys, planted=None):
    """tools.gpu_check's verdict on float32 gradients `failing_keys`, with `planted(paddle_record_values,
    isolated_values)` changing the Paddle side's layer records first."""
    from alignment.layers.localize import Record, compare_records, load_layer_values
    from tools.gpu_check import unexplained_by_rounding
    from alignment.pairs.greedyhash import GREEDYHASH
    from tools.gpu_check_side import isolated_path, load_layer_record

    record = load_layer_record(str(workdir), "paddle")
    port = Record(record.layers, dict(record.values), record.env)  # the files are read-only archives
    isolated = dict(load_layer_values(isolated_path(str(workdir), "paddle")))
    if planted:
        planted(port.values, isolated)
    localization = compare_records("float32", load_layer_record(str(workdir), "torch"), port, isolated, GREEDYHASH,
                                   reference_isolated=load_layer_values(isolated_path(str(workdir), "torch")))
    return unexplained_by_rounding(localization, failing_keys)


def flipped_max_pool(values, isolated):
    """What a max-pool decision flipped by rounding looks like: the gradient of alex.features.5's input (the
    ReLU's output before it) routed differently in the chained run; fed torch's values, the layer agrees."""
    key = "eval.grad.alex.features.4.output"
    values[key] = np.roll(values[key], 1, axis=-1)


@pytest.mark.slow
def test_gpu_check_passes_as_rounding_only_the_gradients_a_flip_explains(gpu_check_layers):
    """Float32 gradients that differ are excused only as a decision flipped by rounding, shown layer by layer;
    a parameter gradient computed wrongly (the planted defects) fails, naming the gradient or the layer."""
    workdir = gpu_check_layers
    inherited = ["grad.input", "grad.alex.features.0.weight", "grad.alex.features.3.bias"]
    assert judged(workdir, inherited, flipped_max_pool) is None
    reason = judged(workdir, inherited + ["grad.alex.features.6.weight"], flipped_max_pool)
    assert "grad.alex.features.6.weight" in reason and "alex.features.5" in reason
    assert "every layer's gradients agree" in judged(workdir, ["grad.alex.classifier.1.weight"])

    def computes_otherwise(values, isolated):
        flipped_max_pool(values, isolated)
        isolated["eval.grad.alex.features.4.output"] = isolated["eval.grad.alex.features.4.output"] * np.float32(1.01)
    assert judged(workdir, inherited, computes_otherwise) == "Paddle layers that differ fed torch's values: alex.features.5"
