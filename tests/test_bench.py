"""The benchmark code on tiny settings (so that it cannot rot; nothing here is timed), and the speed
changes it measures: the batched loaders give the reference loaders' batches bit for bit, Paddle's
static graph trains as the dynamic one does, the MKL setting is made only where it belongs."""
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import bench, process_peak
from benchmarks.worker import MEASUREMENTS
from greedyhash_common.infra import cpu_math
from tests.conftest import PROJECT_ROOT, run_module

TINY = ["--batch-size", "2", "--image-size", "64", "--warm-up", "1", "--repeats", "1", "--images", "6",
        "--eval-batch-size", "4", "--warm-up-passes", "0", "--passes", "1", "--threads", "1"]

# Every item and variant of one framework in one process (one import instead of one per measurement).
MEASURE_ALL = """
import json, sys
from benchmarks.worker import MEASUREMENTS, get_args_parser, measure
framework = sys.argv[1]
results = []
for item, (_, variants) in MEASUREMENTS.items():
    for variant in variants[framework]:
        args = get_args_parser().parse_args([framework, item, variant, "--output", "unused", *sys.argv[2:]])
        results.append(measure(framework, item, variant, args))
print(json.dumps(results))
"""


def _child_environment():
    return dict(os.environ, PYTHONPATH=PROJECT_ROOT)


@pytest.fixture(scope="module")
def measurements():
    """Every measurement of both frameworks on tiny settings."""
    results = []
    for framework in bench.FRAMEWORKS:
        done = subprocess.run([sys.executable, "-c", MEASURE_ALL, framework, *TINY], cwd=PROJECT_ROOT,
                              env=_child_environment(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        results += json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.mark.slow
def test_every_measurement_runs_and_reports_its_figures(measurements):
    expected = {(framework, item, variant) for item, (_, variants) in MEASUREMENTS.items()
                for framework, names in variants.items() for variant in names}
    assert {(entry["framework"], entry["item"], entry["variant"]) for entry in measurements} == expected
    for entry in measurements:
        rate = entry["images_per_second"]
        assert 0 < rate["min"] <= rate["median"] <= rate["max"], entry
        assert entry["peak_rss_mb"] > 0 and entry["env"]["threads"] == 1
        assert entry["items_per_run"] == (2 if entry["item"] in ("train", "infer") else 6)


@pytest.mark.slow
def test_markdown_report_has_both_tables_ratios_and_map(measurements):
    from benchmarks.map_speed import measure_map_speed

    report = {"started": "start", "finished": "end", "machine": bench.machine_description(),
              "settings": {"threads": 1, "device": "cpu", "bit": 48, "batch_size": 2, "image_size": 64,
                           "warm_up": 1, "repeats": 1, "images": 6, "eval_batch_size": 4, "loader_workers": 0,
                           "warm_up_passes": 0, "passes": 1},
              "measurements": measurements,
              "map": {"results": measure_map_speed((12,), 10, 100, 1), "load_average_before": 0.5,
                      "other_programs_cores": 0.1},
              "align": None}
    text = bench.markdown_report(report)
    for heading in ("## Training and inference", "## Evaluation pipeline", "## mAP"):
        assert heading in text
    torch_train = bench.find(measurements, "torch", "train", "dynamic")
    paddle_train = bench.find(measurements, "paddle", "train", "dynamic")
    expected = paddle_train["images_per_second"]["median"] / torch_train["images_per_second"]["median"]
    assert f"| {expected:.2f} |" in text
    assert "failed" not in text


def test_failed_measurement_is_reported_not_raised():
    entry = {"framework": "paddle", "item": "train", "variant": "static", "error": "exit status 1: boom"}
    assert bench.ratio(entry, None) is None
    assert "boom" in "\n".join(bench.error_lines([entry]))


@pytest.mark.slow
def test_benchmark_command_writes_json_and_markdown(tmp_path):
    done = run_module("benchmarks", "--quick", "--items", "loader", "--output-dir", tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [(entry["framework"], entry["variant"]) for entry in report["measurements"]] == [
        ("torch", "reference"), ("torch", "batched"), ("paddle", "reference"), ("paddle", "batched")]
    assert report["map"]["results"][0]["map_difference"] < 1e-9 and report["align"] is None
    assert all(entry["other_programs_cores"] is not None for entry in report["measurements"])
    assert "## Training and inference" in (tmp_path / "bench.md").read_text()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]


def test_side_log_lines_are_parsed(tmp_path):
    (tmp_path / "side_torch.log").write_text("torch forward seeded-224px float32: 0.9 s\nnoise\n"
                                             "torch forward rescaled-256px float32: 1.1 s\n"
                                             "torch train seeded-64px float64: 12.0 s\n")
    (tmp_path / "side_paddle.log").write_text("paddle optim seeded float32: 1.5 s\n")
    assert bench.parse_side_logs(str(tmp_path)) == {("torch", "forward", "float32"): 2.0,
                                                    ("torch", "train", "float64"): 12.0,
                                                    ("paddle", "optim", "float32"): 1.5}


def test_align_lines_render_steps_alone():
    align = {"command": "python -m alignment", "returncode": 0, "wall_seconds": 100.0, "peak_tree_rss_mb": 3000.0,
             "peak_process_rss_mb": 1700.0, "load_average_before": 0.4, "other_programs_cores": 0.2,
             "side_step_seconds": [{"framework": "torch", "step": "data", "dtype": "float32", "seconds": 0.4},
                                   {"framework": "paddle", "step": "data", "dtype": "float32", "seconds": 0.9}],
             "steps_alone": [{"step": "data", "returncode": 0, "wall_seconds": 20.0, "peak_tree_rss_mb": 900.0,
                              "peak_process_rss_mb": 600.0, "load_average_before": 0.5,
                              "other_programs_cores": 0.05}]}
    text = "\n".join(bench.align_lines(align))
    assert "| data | float32 | 0.4 | 0.9 | 20 | 900 / 600 | 0.50 / 0.05 |" in text


@pytest.mark.slow
def test_the_start_up_is_measured_for_both_sides_and_the_one_step_loop(tmp_path):
    """Each side's start, and the one-step loop first and again; the second reuses the weight sets, so it
    cannot take as long as the first (which makes them)."""
    args = bench.get_args_parser().parse_args(["--startup-repeats", "1", "--align-args", "--sizes 64 --weight-sets seeded"])
    startup = bench.measure_startup(args, str(tmp_path / "not-made-yet"))
    for entry in (*startup["sides"].values(), startup["one_step"]["first"], startup["one_step"]["again"]):
        assert entry["runs"] == 1 and not entry.get("failed") and entry["median"] > 0.1
    assert startup["one_step"]["again"]["median"] < startup["one_step"]["first"]["median"]
    assert "--steps forward" in startup["one_step"]["command"] and "--no-profile" in startup["one_step"]["command"]
    text = "\n".join(bench.startup_lines(startup))
    assert "| a side process's start" in text and "| again (the weight sets reused) |" in text


def test_a_failed_start_up_run_is_reported_as_failed():
    entry = bench.spread_or_failure([1.0, None])
    assert entry == {"failed": True, "runs": 2} and bench.seconds_cell(entry) == "failed"
    assert bench.seconds_cell(bench.spread_or_failure([2.0, 1.0, 3.0])) == "2.0 (1.0-3.0)"


def test_process_peak_sees_the_memory_of_a_child(tmp_path):
    allocate = "import time; block = bytearray(80 * 2 ** 20); block[::4096] = b'x' * len(block[::4096]); time.sleep(0.6)"
    result = process_peak.measure([sys.executable, "-c", allocate], cwd=PROJECT_ROOT, env=_child_environment())
    assert result["returncode"] == 0 and result["wall_seconds"] > 0.5
    assert result["peak_process_rss_mb"] >= 80 and result["peak_tree_rss_mb"] >= 80


# ------------------------------------------------------------------------------- the batched loaders
def _same_batches(data, reference, batched):
    reference, batched = [data.to_numpy_batch(b) for b in reference], [data.to_numpy_batch(b) for b in batched]
    assert len(reference) == len(batched) > 1
    for (ref_images, ref_labels), (images, labels) in zip(reference, batched):
        assert ref_images.dtype == images.dtype == np.float32 and ref_labels.dtype == labels.dtype
        assert ref_labels.shape == labels.shape
        assert np.array_equal(ref_images, images) and np.array_equal(ref_labels, labels)


@pytest.mark.slow
@pytest.mark.parametrize("framework", bench.FRAMEWORKS)
@pytest.mark.parametrize("size, workers", [(224, 0), (224, 2), (64, 2), (32, 0)])
def test_batched_loaders_give_the_reference_batches_bit_for_bit(framework, size, workers):
    """At 224 and 64 px, and at 32 px where the reference Resize returns the image unchanged."""
    data = importlib.import_module(f"{framework}_impl.data")
    fast = importlib.import_module(f"{framework}_impl.fast_data")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (23, 32, 32, 3), dtype=np.uint8)
    images[0], images[1], images[2, ::2] = 0, 255, 255
    labels = rng.integers(0, 10, 23)
    _same_batches(data, data.eval_loader(images, labels, 5, size),
                  fast.eval_loader(images, labels, 5, size, workers=workers))
    reference = data.train_loader(images, labels, 4, 7, size)
    batched = fast.train_loader(images, labels, 4, 7, size, workers=workers)
    assert len(reference) == len(batched) and len(batched.dataset) == 23
    for epoch in (0, 1):
        reference.batch_sampler.set_epoch(epoch)
        batched.batch_sampler.set_epoch(epoch)
        _same_batches(data, reference, batched)


def test_batched_loader_stops_cleanly_when_the_consumer_stops():
    from greedyhash_common.data.batched_loader import BatchedLoader, SequentialBatches

    images = np.zeros((40, 32, 32, 3), dtype=np.uint8)
    loader = BatchedLoader(images, np.zeros(40, dtype=np.int64), SequentialBatches(40, 4), lambda image: image,
                           np.zeros((3, 256), np.float32), lambda x, y: (x, y), workers=2, prefetch=2)
    first = next(iter(loader))
    assert first[0].shape == (4, 3, 32, 32) and len(loader) == 10
    iterator = iter(loader)
    next(iterator)
    iterator.close()  # pending batches are cancelled, the threads end


# ------------------------------------------------------------------- Paddle's static graph, training
def _train_two_steps(static):
    """Losses and weights after two training steps of a model without dropout (the two graphs draw
    different masks), in Paddle's dynamic graph or its static graph."""
    import paddle

    from paddle_impl.model import GreedyHash
    from paddle_impl.optim import build_optimizer
    from paddle_impl.static_model import to_static
    from paddle_impl.train_step import train_step

    rng = np.random.default_rng(0)
    images = paddle.to_tensor(rng.standard_normal((2, 3, 64, 64)).astype(np.float32))
    labels = paddle.to_tensor(rng.integers(0, 10, 2))
    paddle.seed(0)
    model = GreedyHash(12)
    model.train()  # a to_static program made in eval mode has no backward
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.Dropout):
            layer.p = 0.0
    if static:
        model = to_static(model)
    optimizer, _ = build_optimizer(model)
    losses = [[float(value) for value in train_step(model, optimizer, images, labels)] for _ in range(2)]
    return losses, {name: value.numpy() for name, value in model.state_dict().items()}


@pytest.mark.slow
def test_paddle_static_graph_trains_as_the_dynamic_graph():
    (dynamic_losses, dynamic_state), (static_losses, static_state) = _train_two_steps(False), _train_two_steps(True)
    assert dynamic_losses[0] != dynamic_losses[1], dynamic_losses
    np.testing.assert_allclose(static_losses, dynamic_losses, rtol=1e-6)
    for name in dynamic_state:
        np.testing.assert_allclose(static_state[name], dynamic_state[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_the_predictor_encodes_as_encode_and_leaves_the_model_as_it_found_it():
    from paddle_impl.eval import encode
    from paddle_impl.fast_data import eval_loader
    from paddle_impl.model import GreedyHash
    from paddle_impl.static_model import InferenceEncoder

    rng = np.random.default_rng(0)
    model = GreedyHash(12)
    model.train()
    encoder = InferenceEncoder(model, 64, 1)
    assert model.training
    pixels = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    classes = rng.integers(0, 10, 10)
    fast = encoder.encode(eval_loader(pixels, classes, 4, 64))
    reference = encode(model, eval_loader(pixels, classes, 4, 64))
    for name, value, expected in zip(("codes", "h", "logits", "labels"), fast, reference):
        assert value.shape == expected.shape and value.dtype == expected.dtype, name
    np.testing.assert_array_equal(fast[3], reference[3])
    np.testing.assert_allclose(fast[1], reference[1], atol=1e-6)
    assert np.array_equal(fast[0], reference[0]) or np.abs(reference[1][fast[0] != reference[0]]).max() < 1e-6


# ------------------------------------------------------------------------------------- MKL on AMD
def _cpuinfo(tmp_path, vendor, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: test\nflags\t\t: {flags}\n\n"
                    f"processor\t: 1\nvendor_id\t: {vendor}\n")
    return str(path)


@pytest.mark.parametrize("vendor, flags, expected", [
    ("AuthenticAMD", "fpu sse2 avx avx2 fma", {"MKL_DEBUG_CPU_TYPE": "5"}),
    ("HygonGenuine", "avx2", {"MKL_DEBUG_CPU_TYPE": "5"}),
    ("AuthenticAMD", "fpu sse2 avx", {}),
    ("GenuineIntel", "fpu avx avx2 avx512f", {}),
])
def test_mkl_dispatch_is_set_on_amd_with_avx2_only(tmp_path, vendor, flags, expected):
    assert cpu_math.mkl_dispatch_environment({}, _cpuinfo(tmp_path, vendor, flags)) == expected


def test_mkl_dispatch_respects_the_user_and_missing_cpuinfo(tmp_path):
    amd = _cpuinfo(tmp_path, "AuthenticAMD", "avx2")
    assert cpu_math.mkl_dispatch_environment({"MKL_DEBUG_CPU_TYPE": "2"}, amd) == {}
    assert cpu_math.mkl_dispatch_environment({}, str(tmp_path / "absent")) == {}


@pytest.mark.parametrize("framework", ["torch", "paddle"])
@pytest.mark.parametrize("vendor, told, expected", [("AuthenticAMD", {}, "5"),
                                                    ("AuthenticAMD", {"mkl_avx2_on_amd": False}, None),
                                                    ("GenuineIntel", {}, None)])
def test_every_runtime_sets_the_mkl_dispatch_on_amd_unless_told_not_to(framework, vendor, told, expected, tmp_path,
                                                                        monkeypatch):
    """As every entry point starts (runtime.configure), on a CPU described by a /proc/cpuinfo of the test's."""
    runtime = importlib.import_module(f"{framework}_impl.runtime")
    monkeypatch.setattr(cpu_math, "CPUINFO", _cpuinfo(tmp_path, vendor, "fpu avx avx2 fma"))
    monkeypatch.setattr(os, "environ", {key: value for key, value in os.environ.items()
                                        if key != cpu_math.MKL_CPU_VARIABLE})
    runtime.configure(2, **told)
    assert os.environ.get(cpu_math.MKL_CPU_VARIABLE) == expected


# ------------------------------------------------------------------------------------- profile
@pytest.mark.slow
@pytest.mark.parametrize("framework, convolution", [("torch", "aten::conv"), ("paddle", "conv2d")])
def test_the_profile_names_the_operators_of_a_training_step(tmp_path, framework, convolution):
    output = tmp_path / f"profile_{framework}.txt"
    done = subprocess.run([sys.executable, "-m", "benchmarks.profile", framework, "--batch-size", "2", "--image-size",
                           "64", "--warm-up", "1", "--steps", "1", "--threads", "1", "--output", str(output)],
                          cwd=PROJECT_ROOT, env=_child_environment(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    table = output.read_text()
    assert table.startswith(f"{framework} training step, batch 2, 64 px, 1 threads") and convolution in table


def test_speed_table_gives_each_tool_its_median_every_run_and_largest_peak():
    from benchmarks import padiff_comparison

    case = next(iter(padiff_comparison.SPEED_CASES))
    entries = [{"tool": tool, "case": case, "seconds": seconds, "cpu_seconds": seconds / 2, "peak_mb": peak,
                "written_bytes": 2_000_000, "passed": False, "names": {"forward float64": "layer1.0.bn1"},
                **({"phases": "steps 3.0 s"} if tool == "suite" else {})}
               for seconds, peak in ((30.0, 1700), (10.0, 1800), (14.0, 1750)) for tool in padiff_comparison.SPEED_TOOLS]
    machine = {"cores": 2, "load_average_before": [9.9, 9.0, 8.0], "load_average_after": [8.0, 8.5, 8.0]}
    text = padiff_comparison.speed_table(entries, machine)
    rows = [line for line in text.splitlines() if line.startswith("| resnet18")]
    assert len(rows) == len(padiff_comparison.SPEED_TOOLS)
    assert all("| 14.0 (30.0, 10.0, 14.0) | 7.0 | 1800 | 2 MB |" in row for row in rows)
    assert "[9.9, 9.0, 8.0] before" in text and "steps 3.0 s" in text


def test_the_planted_defects_zero_reference_keys_are_read_back_as_key_results(tmp_path):
    """benchmarks.planted_defects reads the checker's diff JSON through alignment.check.read_result: the key held
    to its operation's scale is found, with its verdict."""
    from alignment.check import check_step, write_reports
    from benchmarks.planted_defects import zero_reference_keys

    result = check_step("forward", "float64", {"layer.a": np.ones(2), "layer.b": np.full(2, 1e-20)},
                        {"layer.a": np.ones(2), "layer.b": np.full(2, 2e-20)})
    folder = tmp_path / "float64" / "seeded-64px"
    folder.mkdir(parents=True)
    write_reports(result, {}, str(folder / "forward_diff.log"), str(folder / "forward_diff.json"))
    [key] = zero_reference_keys(str(tmp_path))
    assert key.name == "layer.b" and key.passed and key.max_abs == 1e-20
