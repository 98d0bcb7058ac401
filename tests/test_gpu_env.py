"""The GPU environment's plumbing: requirements-gpu.txt, the Makefile targets CI runs (checked as make
prints them), the CUDA libraries' links, tools.gpu_check and tools.gpu_report on their CPU paths (both
sides in this environment here; CI runs the Paddle side in .venv-gpu through `make test-gpu-env`). The
tests named *in_the_gpu_environment need .venv-gpu (skipped without it): `make test-gpu-env` runs them
once it has installed it."""
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
    # CUDA 11.8 and cuDNN 8.6, as Paddle 2.6.2 was built (paddle.version.cuda(), .cudnn())
    assert pins["nvidia-cublas-cu11"] == "11.11.3.6" and pins["nvidia-cudnn-cu11"] == "8.6.0.163"
    assert pins["nvidia-cuda-nvrtc-cu11"] == "11.8.89"
    assert {"nvidia-curand-cu11", "nvidia-cusolver-cu11", "nvidia-cusparse-cu11", "nvidia-nccl-cu11"} <= set(pins)
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
    assert re.search(r"-m pytest -q .*\btests$", commands, re.M) and "test-gpu-env" in commands
    part = make_dry_run("test-gpu-env", "VENV=/some/venv")
    for target in ("gpu-env", "align-gpu", "align-gpu MODEL=resnet18-torch-bn", "lite VENV=.venv-gpu", "gpu-report"):
        assert f"--no-print-directory {target}" in part, target
    assert "--no-print-directory gpu-env-tests" in part
    assert "/some/venv/bin/python -m pytest -q tests/test_gpu_env.py -k in_the_gpu_environment" in make_dry_run(
        "gpu-env-tests", "VENV=/some/venv")


def test_gpu_report_runs_the_report_in_venv_with_the_paddle_side_in_venv_gpu():
    printed = make_dry_run("gpu-report", "VENV=/some/venv", "DEVICE=gpu", "DATA=cifar")
    commands = " ".join(printed.replace("\\\n", " ").split())
    assert commands.endswith("/some/venv/bin/python -m tools.gpu_report --paddle-python .venv-gpu/bin/python "
                             "--workdir logs/gpu-env/report --bit 48 --device gpu --data cifar"), commands


def fake_site_packages(root, paddle_version="2.6.2", cuda="11.8"):
    """A site-packages with Paddle's version file and libs folder and two NVIDIA packages' libraries."""
    (root / "paddle" / "version").mkdir(parents=True)
    (root / "paddle" / "version" / "__init__.py").write_text(f"full_version     = '{paddle_version}'\n"
                                                             f"cuda_version     = '{cuda}'\n")
    (root / "paddle" / "libs").mkdir()
    for package, name in (("cublas", "libcublas.so.11"), ("cublas", "libcublasLt.so.11"), ("cudnn", "libcudnn.so.8")):
        (root / "nvidia" / package / "lib").mkdir(parents=True, exist_ok=True)
        (root / "nvidia" / package / "lib" / name).write_text(name)
    return root


def test_links_give_paddle_2_cuda_builds_each_nvidia_library_under_both_names(tmp_path):
    from greedyhash_common.infra.paddle_cuda_libraries import make_links

    site_packages = fake_site_packages(tmp_path / "site")
    make_links(str(site_packages))
    libs = site_packages / "paddle" / "libs"
    for name, content in (("libcublas.so", "libcublas.so.11"), ("libcublas.so.11", "libcublas.so.11"),
                          ("libcublasLt.so", "libcublasLt.so.11"), ("libcudnn.so", "libcudnn.so.8"),
                          ("libcudnn.so.8", "libcudnn.so.8")):
        assert (libs / name).is_symlink() and (libs / name).read_text() == content, name
    assert not os.path.isabs(os.readlink(libs / "libcudnn.so"))  # the environment may move
    make_links(str(site_packages))  # again: nothing changes, nothing fails
    assert sorted(os.listdir(libs)) == ["libcublas.so", "libcublas.so.11", "libcublasLt.so", "libcublasLt.so.11",
                                        "libcudnn.so", "libcudnn.so.8"]


@pytest.mark.parametrize("paddle_version,cuda", [("2.6.2", "False"), ("3.3.1", "12.6")])
def test_links_leave_cpu_builds_and_paddle_3_alone(tmp_path, paddle_version, cuda):
    from greedyhash_common.infra.paddle_cuda_libraries import make_links

    site_packages = fake_site_packages(tmp_path / "site", paddle_version, cuda)
    make_links(str(site_packages))
    assert os.listdir(site_packages / "paddle" / "libs") == []


def test_links_where_they_cannot_be_made_are_skipped_quietly(tmp_path):
    """An environment whose paddle/libs cannot take a link (a file stands there: ENOTDIR even for root, as
    a read-only one gives EACCES) is left as it is, without an error at every start-up."""
    from greedyhash_common.infra.paddle_cuda_libraries import make_links

    site_packages = fake_site_packages(tmp_path / "site")
    libs = site_packages / "paddle" / "libs"
    libs.rmdir()
    libs.write_text("not a folder")
    make_links(str(site_packages))
    assert libs.read_text() == "not a folder"


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
    from tools.gpu_check_worker import run_path

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
    from tools.gpu_check_worker import isolated_path, load_layer_record

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
        # a unit run alone keeps the gradient of its input under its own name (alignment.layers.localize.alone_key)
        isolated["eval.grad.alex.features.5.input"] = isolated["eval.grad.alex.features.5.input"] * np.float32(1.01)
    assert judged(workdir, inherited, computes_otherwise) == "Paddle layers that differ fed torch's values: alex.features.5"


def test_bitwise_differences_names_each_value_that_is_not_bit_identical():
    from tools.gpu_report import bitwise_differences

    first = {"logits": np.arange(6, dtype=np.float32).reshape(2, 3),
             "grad.alex.features.0.weight": np.ones(4, np.float32)}
    assert bitwise_differences(first, {key: value.copy() for key, value in first.items()}) == {}
    second = {key: value.copy() for key, value in first.items()}
    second["grad.alex.features.0.weight"][2] = np.nextafter(np.float32(1), np.float32(2))  # one ulp
    assert bitwise_differences(first, second) == {"grad.alex.features.0.weight": pytest.approx(1.19e-7, rel=1e-2)}
    del second["logits"]
    assert bitwise_differences(first, second)["logits"] == "only in one run"


def gpu_environment_python():
    python = os.path.join(PROJECT_ROOT, ".venv-gpu", "bin", "python")
    if not os.path.exists(python):
        pytest.skip(".venv-gpu is not installed (make test-gpu-env installs it and runs this test)")
    return python


@pytest.mark.slow
def test_cuda_libraries_resolve_inside_the_environment_in_the_gpu_environment(tmp_path):
    """Paddle's own loaders find every CUDA library in .venv-gpu; one found elsewhere first (a planted
    libcublas.so on LD_LIBRARY_PATH) fails, named; the missing driver is reported with Paddle's words."""
    from tools.gpu_libraries import markdown, survey

    python = gpu_environment_python()
    found = survey(python)
    assert found["passed"], found
    rows = {row["library"]: row for row in found["libraries"]}
    assert {"cuBLAS", "cuDNN", "NCCL", "NVRTC"} <= set(rows)
    assert any(path.endswith("nvidia/cudnn/lib/libcudnn_cnn_infer.so.8") for path in rows["cuDNN"]["found"])
    if not found["driver_found"]:
        assert "The third-party dynamic library (libcuda.so) that Paddle depends on is not configured correctly" \
            in rows["NVIDIA driver"]["message"]
    elsewhere = tmp_path / "other-cuda"  # cuBLAS's files (hard links), found on LD_LIBRARY_PATH before .venv-gpu's
    elsewhere.mkdir()
    os.link(rows["cuBLAS"]["found"][0], elsewhere / "libcublas.so")
    os.link(rows["cuBLASLt"]["found"][0], elsewhere / "libcublasLt.so.11")
    planted = survey(python, {**os.environ, "LD_LIBRARY_PATH": str(elsewhere)})
    failing = {row["library"]: row["found"] for row in planted["libraries"]
               if row["required"] and not row["in_environment"]}
    assert not planted["passed"] and "cuBLAS" in failing and set(failing) <= {"cuBLAS", "cuBLASLt"}, failing
    assert all(path.startswith(str(elsewhere)) for paths in failing.values() for path in paths)
    assert "| cuBLAS | `libcublas.so` | `" + str(elsewhere / "libcublas.so") in markdown(planted)
    assert "OUTSIDE the environment" in markdown(planted)


@pytest.fixture(scope="module")
def cpu_report(module_tmp):
    """tools.gpu_report in this environment (Paddle's CPU build), gpu-check's images at 64 px."""
    workdir = module_tmp("gpu-report")
    done = subprocess.run([sys.executable, "-m", "tools.gpu_report", "--workdir", str(workdir), "--bit", "12",
                           "--size", "64"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return done, workdir


@pytest.mark.slow
def test_gpu_report_without_a_gpu_writes_one_report_listing_what_did_not_run(cpu_report):
    done, workdir = cpu_report
    assert done.returncode == 0, done.stdout + done.stderr
    with open(workdir / "gpu_report.json", encoding="utf-8") as handle:
        report = json.load(handle)
    parts = report["parts"]
    assert not report["on_gpu"] and report["passed"]
    assert parts["gpu_check"]["status"] == "passed" and "not a GPU test" in parts["gpu_check"]["note"]
    assert parts["libraries"]["status"] == "not run" and "CPU build" in parts["libraries"]["reason"]
    for name in ("determinism", "throughput", "epoch"):
        assert parts[name]["status"] == "not run" and "no GPU" in parts[name]["reason"]
    assert parts["data_parallel"]["reason"] == "needs two GPUs; 0 visible"
    assert parts["alignment"]["status"] == "not run"
    text = (workdir / "gpu_report.md").read_text()
    assert "- determinism: not run: no GPU" in text
    assert "| paddle cpu float64 | torch cpu float64 | all | True |" in text
    assert "- epoch: not run: no GPU" in done.stdout


@pytest.mark.slow
def test_gpu_report_gpu_parts_run_on_their_cpu_path(cpu_report, tmp_path):
    """The parts that run only on a GPU, run here on the CPU: determinism (bit-identical runs), throughput
    of both frameworks, an epoch with evaluation in both. About 1 min 30 s on 2 cores."""
    import argparse

    from tests.tiny_runs import PROTOCOL, write_tiny_split
    from tools.gpu_report import determinism, epoch, throughput

    _, workdir = cpu_report
    args = argparse.Namespace(workdir=str(workdir), paddle_python=sys.executable, bit=12, data=None)
    same = determinism(args, True, device="cpu")
    assert same["status"] == "passed", same
    for row in same["frameworks"].values():
        assert row["deterministic_runs_differ"] == {} and row["default_runs_differ"] == {}
        assert row["tf32_off"]["within_float32_limits"] and row["tf32_allowed"]["within_float32_limits"]
    speed = throughput(args, True, device="cpu", batch_size=4, image_size=64, steps={"--warm-up": 1, "--repeats": 2})
    assert speed["status"] == "measured", speed
    assert all(row["images_per_second"] > 0 and row["device"] == "cpu" for row in speed["frameworks"].values())
    extra = ["--image-size", 64, "--protocol", PROTOCOL, "--split-file", write_tiny_split(tmp_path / "split.npz"),
             "--threads", 2]
    trained = epoch(args, True, device="cpu", extra=extra)
    assert trained["status"] == "passed", trained
    assert all(0 <= row["map"] <= 1 for row in trained["frameworks"].values())


@pytest.mark.slow
def test_gpu_report_device_gpu_without_a_gpu_is_refused_in_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, "-m", "tools.gpu_report", "--workdir", str(tmp_path), "--device", "gpu"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--device gpu: torch and paddle see(s) no GPU" in done.stderr
    assert not (tmp_path / "gpu_report.json").exists()


def test_gpu_checks_rows_are_verdicts_an_older_gpu_check_json_reads_back_as():
    """gpu_check.json's runs are alignment.verdict rows: one written before they carried findings reads back with
    its verdict (what tools.gpu_report renders), and a row judged as rounding passes by the suite's one rule."""
    import dataclasses

    from alignment.diagnosis import DEFECT, ROUNDING, Finding
    from tools.gpu_check import RunVerdict

    older = {"run": "paddle gpu float32", "against": "torch gpu float32", "keys": "all", "passed": True,
             "worst_key": "grad.input", "max_abs": 1e-4, "max_rel": 1e-3, "limit": 1e-5, "failing_keys": ["grad.input"],
             "as_rounding": True, "note": "passed as rounding: a decision of alex.features.5 flipped"}
    row = RunVerdict.from_json(older)
    assert row.passed and row.as_rounding and row.failing_keys == ("grad.input",)
    assert RunVerdict.from_json(json.loads(json.dumps(row.as_json()))) == row
    assert not RunVerdict.from_json({**older, "passed": False, "as_rounding": False}).passed
    defect = dataclasses.replace(row, findings=(Finding(ROUNDING, "flip", ("grad.input",)),
                                                Finding(DEFECT, "not rounding", ("grad.alex.features.6.weight",))))
    assert not defect.passed
